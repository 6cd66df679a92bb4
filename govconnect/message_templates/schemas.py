"""API schemas for templates and agency senders: inputs forbid unknown fields."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govconnect.text_rules import MultilineText, Text, TitleText

TextField = Field(min_length=1, max_length=2000)
Code = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")


class SmsVariant(BaseModel):
    """SMS text; with `aliyun_template_code`, Alibaba gets that code and `aliyun_params` (variable → text)."""

    model_config = ConfigDict(extra="forbid")

    text: MultilineText = TextField
    aliyun_template_code: Text = Code
    aliyun_params: dict[Text, Text] = Field(default_factory=dict, max_length=20)


class WechatVariant(BaseModel):
    """A WeChat template message: the template id and its fields (field name → text)."""

    model_config = ConfigDict(extra="forbid")

    template_id: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    fields: dict[Text, Text] = Field(min_length=1, max_length=20)


class VoiceVariant(BaseModel):
    """Text read out by TTS; with `tts_code`, Alibaba voice gets that code and `tts_params`."""

    model_config = ConfigDict(extra="forbid")

    text: MultilineText = Field(min_length=1, max_length=300)
    tts_code: Text = Code
    tts_params: dict[Text, Text] = Field(default_factory=dict, max_length=20)


class TextVariant(BaseModel):
    """Plain text (WeCom, DingTalk, Weibo, the site)."""

    model_config = ConfigDict(extra="forbid")

    text: MultilineText = TextField


class Variants(BaseModel):
    """Per-channel variants; at least one."""

    model_config = ConfigDict(extra="forbid")

    sms: SmsVariant | None = None
    wechat: WechatVariant | None = None
    voice: VoiceVariant | None = None
    wecom: TextVariant | None = None
    dingtalk: TextVariant | None = None
    weibo: TextVariant | None = None
    site: TextVariant | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Variants:
        if not self.model_dump(exclude_none=True):
            raise ValueError("at least one channel variant is needed")
        return self


class TemplateCreate(BaseModel):
    """A new template (version 1)."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    title: TitleText = Field(min_length=1, max_length=200)
    variants: Variants


class TemplateUpdate(BaseModel):
    """A change: a new version is written with what is given, the rest copied from the current one."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=100)
    title: TitleText | None = Field(default=None, min_length=1, max_length=200)
    variants: Variants | None = None


class TemplatePublic(BaseModel):
    """A template at one version, with the placeholders it uses."""

    id: int
    name: str
    version: int
    title: str
    variants: Variants
    placeholders: list[str]
    created_at: datetime
    updated_at: datetime


class TemplatePage(BaseModel):
    """One page of templates."""

    items: list[TemplatePublic]
    total: int
    limit: int
    offset: int


class PreviewRequest(BaseModel):
    """Sample values for the placeholders (missing ones show as 【name】)."""

    model_config = ConfigDict(extra="forbid")

    values: dict[Text, Text] = Field(default_factory=dict, max_length=50)


class VariantPreview(BaseModel):
    """One channel's rendered text; for SMS the full text a phone shows and its billed parts."""

    text: str
    length: int
    parts: int | None = None
    fields: dict[str, str] | None = None
    provider_params: dict[str, str] | None = None
    missing: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class TemplatePreview(BaseModel):
    """Every variant rendered with the sample values."""

    template_id: int
    version: int
    title: str
    variants: dict[str, VariantPreview]


class SenderSettings(BaseModel):
    """An agency's SMS signature (【…】), its free-text Alibaba template code and its urgent-warning policy."""

    model_config = ConfigDict(extra="forbid")

    sms_sign_name: Text = Field(default="", max_length=30, pattern=r"^[^【】\[\]]*$")
    sms_template_code: Text = Code
    urgent_ignores_suppression: bool = False
