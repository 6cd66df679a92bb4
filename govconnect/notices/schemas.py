"""API schemas for notices: inputs forbid unknown fields, outputs expose nothing private."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from govconnect.api.params import RowId
from govconnect.clock import CHINA_TZ
from govconnect.text_rules import MultilineText, Text, TitleText

Channel = Literal["sms", "voice", "wechat", "wecom", "dingtalk", "weibo", "site", "tv"]


class SubscriberAudience(BaseModel):
    """Subscribers following any of the categories (default: the notice's) in any of the regions."""

    model_config = ConfigDict(extra="forbid")

    categories: list[Text] = Field(default_factory=list, max_length=50)
    regions: list[Text] = Field(default_factory=list, max_length=200)


class StaffAudience(BaseModel):
    """Staff by department subtree, region or contact ids (from the directory)."""

    model_config = ConfigDict(extra="forbid")

    departments: list[RowId] = Field(default_factory=list, max_length=200)
    regions: list[Text] = Field(default_factory=list, max_length=200)
    ids: list[RowId] = Field(default_factory=list, max_length=10_000)


class AudienceSpec(BaseModel):
    """Who receives the notice; sources combine and each person is reached once per channel."""

    model_config = ConfigDict(extra="forbid")

    subscribers: SubscriberAudience | None = None
    staff: StaffAudience | None = None
    csv: MultilineText | None = Field(
        default=None, description="CSV text with a 手机号/phone column and personalisation columns"
    )
    lists: list[RowId] = Field(
        default_factory=list, max_length=20, description="Saved audience lists (POST /api/v1/audiences) by id"
    )


class Escalation(BaseModel):
    """DingTalk / WeCom first; whoever has not read it after `after_minutes` gets it by SMS."""

    model_config = ConfigDict(extra="forbid")

    after_minutes: float = Field(gt=0, le=1440, description="Minutes to wait for reading (fractions allowed)")
    # The voice step: a call to whoever the SMS did not reach (failed / unknown), and, for an urgent
    # notice, to whoever has still not read it this many minutes after the first message.
    voice_after_minutes: float | None = Field(
        default=None, gt=0, le=1440, description="Minutes after the first message: urgent and unread → call"
    )

    @model_validator(mode="after")
    def _voice_after_sms(self) -> Escalation:
        if self.voice_after_minutes is not None and self.voice_after_minutes < self.after_minutes:
            raise ValueError("voice_after_minutes must not be shorter than after_minutes (the call follows the SMS)")
        return self


class NoticeCreate(BaseModel):
    """A notice to broadcast."""

    model_config = ConfigDict(extra="forbid")

    title: TitleText = Field(default="", max_length=200, description="Required unless `template_id` gives it")
    body: MultilineText = Field(
        default="", max_length=5000, description="((placeholders)) filled per recipient; required unless `template_id`"
    )
    category: Text = Field(default="", max_length=64)
    regions: list[Text] = Field(default_factory=list, max_length=200)
    urgency: Literal["normal", "urgent"] = "normal"
    channels: list[Text] = Field(min_length=1, max_length=7)
    audience: AudienceSpec = Field(default_factory=AudienceSpec)
    send_at: datetime | None = None
    # A notice made from the agency's template: title and per-channel variants come from its
    # current version, placeholders filled with `template_values` (the rest per recipient).
    template_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    template_values: dict[Text, Text] = Field(default_factory=dict, max_length=50)
    # "attendance": a meeting notice (回执); the text asks for 1 (will attend) / 2 (will not) and
    # replies are tallied in GET /api/v1/notices/{id}/replies.
    replies: Literal["attendance"] | None = None
    escalation: Escalation | None = None

    @model_validator(mode="after")
    def _text_or_template(self) -> NoticeCreate:
        if self.template_id is None and (not self.title.strip() or not self.body.strip()):
            raise ValueError("title and body are required unless template_id is given")
        if self.template_id is not None and (self.title or self.body):
            raise ValueError("a notice from a template takes its title and body from the template")
        if self.escalation is not None and not {"dingtalk", "wecom"} & set(self.channels):
            raise ValueError("escalation needs a dingtalk or wecom channel to escalate from")
        return self


class HeldDeliveries(BaseModel):
    """Queued deliveries of one channel held back on purpose, why, and until when."""

    reason: Literal["quiet_hours"] = Field(
        description="`quiet_hours`: normal SMS and voice wait from 22:00 until 07:00 Beijing time"
    )
    count: int = Field(description="How many of the channel's `queued` deliveries are held for this reason")
    until: datetime = Field(description="When they go out (Beijing time, with its +08:00 offset)")


class ChannelProgress(BaseModel):
    """Deliveries of one channel by status, and SMS parts; `held` says why queued ones wait."""

    total: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    cancelled: int = 0
    unknown: int = 0
    # Held back at fan-out: the number is on the suppression list / over the daily SMS cap.
    suppressed: int = 0
    capped: int = 0
    parts: int = 0
    # Delivered and reported read by the provider (DingTalk); counted within `delivered` too.
    read: int = 0
    # Part of `queued`: deliveries held back until a known time (empty when nothing is held).
    held: list[HeldDeliveries] = Field(default_factory=list)


class EscalationProgress(BaseModel):
    """Per person, how far an escalating notice went: each person counts once in each figure."""

    people: int = Field(description="People the first channel (DingTalk / WeCom) was addressed to")
    reached: int = Field(description="Of them, sent or delivered by the first channel")
    read: int = Field(description="Of them, reported read (DingTalk) or who tapped a meeting notice's 回执 button")
    sms: int = Field(description="People escalated by SMS (their own statuses are in progress.sms)")
    voice: int = Field(description="People escalated by a voice call (statuses in progress.voice)")
    open: int = Field(description="Escalation deliveries (SMS or voice) not final yet: still queued, sending or sent")


class NoticePublic(BaseModel):
    """A notice as its agency sees it."""

    id: str
    status: str
    title: str
    body: str
    category: str
    regions: list[str]
    urgency: str
    channels: list[str]
    recipient_count: int
    send_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    # Governance: who drafted it (key prefix or staff id), reasons, links, the after-the-fact review.
    created_by: str = ""
    rejected_reason: str | None = None
    retracted_at: datetime | None = None
    retracted_reason: str | None = None
    corrects_id: str | None = None
    review_due_at: datetime | None = None
    reviewed_at: datetime | None = None
    schedule_id: int | None = None
    replies: Literal["attendance"] | None = None  # a meeting notice whose 1/2 replies are tallied
    escalate_after_seconds: int | None = None  # unread DingTalk/WeCom deliveries go by SMS after this
    escalate_voice_after_seconds: int | None = None  # the voice step (see EscalationProgress)
    # People of an escalating notice: reached by the first channel, read it there, escalated by SMS / voice.
    escalation: EscalationProgress | None = None
    progress: dict[str, ChannelProgress] = Field(default_factory=dict)
    # When the progress was counted: for a large notice it may be up to about a second old.
    progress_as_of: datetime | None = None
    # Only in the answer that accepted the notice: its inline CSV's rows accepted, refused, merged.
    audience_report: dict[str, Any] | None = None


class ReplyPublic(BaseModel):
    """One SMS reply to a notice; `sender` masked unless the caller may see that person."""

    id: int
    delivery_id: str | None
    sender: str
    text: str
    provider: str
    answer: Literal["attend", "decline"] | None
    received_at: datetime


class Attendance(BaseModel):
    """A meeting notice's tally: each person's latest 1/2 reply counts; who has not answered."""

    attend: int
    decline: int
    other: int  # people who replied something else and neither 1 nor 2
    unanswered: int
    not_answered: list[dict[str, str]]  # delivery_id and (masked) recipient of people without a 1/2 reply


class ReplyPage(BaseModel):
    """One page of a notice's replies, and for a meeting notice its tally."""

    items: list[ReplyPublic]
    total: int
    limit: int
    offset: int
    attendance: Attendance | None = None


class NoticePage(BaseModel):
    """One page of notices."""

    items: list[NoticePublic]
    total: int
    limit: int
    offset: int


class DeliveryPublic(BaseModel):
    """One delivery; the recipient is masked unless the caller may see that person (`RecipientVisibility`)."""

    id: str
    channel: str
    provider: str
    recipient: str
    status: str
    attempts: int
    parts: int
    error_code: str | None
    sent_at: datetime | None
    final_at: datetime | None
    uncertain: bool
    read_at: datetime | None = None  # when the provider reported it read (DingTalk)


class DeliveryPage(BaseModel):
    """One page of deliveries."""

    items: list[DeliveryPublic]
    total: int
    limit: int
    offset: int


class CallbackRegistration(BaseModel):
    """The agency's HTTPS endpoint for delivery-status callbacks (null removes it)."""

    model_config = ConfigDict(extra="forbid")

    url: Text | None = Field(default=None, max_length=500)


class CallbackInfo(BaseModel):
    """The registered callback and the secret its HMAC signatures use."""

    url: str | None
    signing_secret: str | None
    signature_header: str = "X-GovConnect-Signature"


@dataclass(frozen=True)
class RecipientVisibility:
    """Which delivery recipients a caller may see unmasked, by the directory's rules.

    A delivery to a staff contact (its params carry `_staff`) is shown to callers who may see staff
    contacts (`contacts:write` or a staff session); any other person (subscriber, uploaded CSV) to
    callers with `subscribers:read`.
    """

    staff: bool
    others: bool

    def shown(self, recipient: str, params: dict[str, Any] | None) -> str:
        """The recipient as this caller may see it."""
        if recipient == "public":  # a Weibo post reaches no person
            return recipient
        is_staff = bool((params or {}).get("_staff"))
        return recipient if (self.staff if is_staff else self.others) else mask_recipient(recipient)


def mask_recipient(recipient: str) -> str:
    """138****5678 for phone numbers, a prefix for other ids."""
    if recipient.isdigit() and len(recipient) >= 7:
        return recipient[:3] + "*" * (len(recipient) - 7) + recipient[-4:]
    if len(recipient) > 6:
        return recipient[:4] + "…"
    return "***"


def progress_from_counts(
    rows: list[tuple[Any, ...]], held: Sequence[tuple[str, str, int, datetime]] = ()
) -> dict[str, ChannelProgress]:
    """(channel, status, count, parts[, read]) rows, and (channel, reason, count, until) held rows → progress."""
    out: dict[str, ChannelProgress] = {}
    for channel, status, count, parts, *read in rows:
        progress = out.setdefault(channel, ChannelProgress())
        data: dict[str, Any] = progress.model_dump()
        data[status] = data.get(status, 0) + count
        data["total"] += count
        data["parts"] += int(parts or 0)
        data["read"] += int(read[0] or 0) if read else 0
        out[channel] = ChannelProgress(**data)
    for channel, reason, count, until in held:
        progress = out.setdefault(channel, ChannelProgress())
        moment = until if until.tzinfo else until.replace(tzinfo=UTC)
        progress.held.append(HeldDeliveries(reason=reason, count=count, until=moment.astimezone(CHINA_TZ)))  # type: ignore[arg-type]
    return out
