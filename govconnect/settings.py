"""The one settings object: every knob comes from `GOVCONNECT_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"  # noqa: S105 - sentinel for "not configured", refused outside demo mode


class AliyunSmsSettings(BaseModel):
    """Alibaba Cloud SMS (dysmsapi 2017-05-25)."""

    base_url: str = "https://dysmsapi.aliyuncs.com/"
    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    sign_name: str = "衢州发布"
    template_code: str = "SMS_000000"


class CmppSettings(BaseModel):
    """CMPP 2.0 carrier link to an ISMG."""

    host: str = "127.0.0.1"
    port: int = 7890
    source_addr: str = ""
    shared_secret: SecretStr = SecretStr("")
    service_id: str = "GOVSMS"
    src_id: str = "1069"


class AliyunVoiceSettings(BaseModel):
    """Alibaba Cloud voice notification (dyvmsapi 2017-05-25)."""

    base_url: str = "https://dyvmsapi.aliyuncs.com/"
    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    show_number: str = ""
    tts_code: str = "TTS_000000"
    # Click-to-dial (双呼): calls one staff member (or API key) may place, `limits` notation.
    dial_limit: str = "20/hour"
    dial_session_timeout: int = Field(default=120, ge=1, le=7200)  # longest call, seconds
    dial_record: bool = False  # ask the provider to record calls (RecordFlag)


class WechatMpSettings(BaseModel):
    """WeChat official account."""

    base_url: str = "https://api.weixin.qq.com/"
    appid: str = ""
    secret: SecretStr = SecretStr("")
    template_id: str = ""
    callback_token: SecretStr = SecretStr("")
    # Set it to accept only encrypted (安全模式) pushes: the body is bound to msg_signature.
    encoding_aes_key: SecretStr = SecretStr("")


class WecomSettings(BaseModel):
    """WeCom (企业微信) application."""

    base_url: str = "https://qyapi.weixin.qq.com/"
    corpid: str = ""
    corpsecret: SecretStr = SecretStr("")
    agentid: int = 0


class DingtalkSettings(BaseModel):
    """DingTalk (钉钉) internal application; for 浙政钉 (专有钉钉) point BASE_URL at its own host."""

    base_url: str = "https://oapi.dingtalk.com/"
    appkey: str = ""
    appsecret: SecretStr = SecretStr("")
    agentid: int = 0
    # How often a task's send result is asked for (getsendresult): delivery, then who has read it.
    # DingTalk answers for tasks of the last 24 hours only, so reading is followed that long.
    status_poll_seconds: float = Field(default=60.0, gt=0)
    read_window_hours: float = Field(default=24.0, gt=0, le=24.0)


class WeiboSettings(BaseModel):
    """The city's official Weibo account."""

    base_url: str = "https://api.weibo.com/"
    access_token: SecretStr = SecretStr("")
    safe_domain: str = ""
    posts_per_hour: int = 30  # the account's quota, shared by every worker through Redis


class NoticePipelineSettings(BaseModel):
    """Tuning of the notice pipeline: providers, rates, retries and timeouts."""

    sms_providers: list[str] = ["aliyun_sms", "cmpp"]
    # Share of normal SMS each provider takes first, by cost (e.g. {"aliyun_sms": 1, "cmpp": 3}):
    # a delivery's id decides, so its retries stay on the same provider until failover moves them.
    # Empty: every SMS prefers the first of SMS_PROVIDERS. Urgent SMS always prefer the first.
    sms_weights: dict[str, int] = {}
    rate_per_second: dict[str, int] = {
        "aliyun_sms": 5000,
        "cmpp": 500,
        "aliyun_voice": 1000,
        "wechat_mp": 2000,
        "wecom": 600,
        "dingtalk": 200,  # messages a second; DingTalk counts people a minute per app (143103)
        "weibo": 1,
        # QuerySendDetails pages a second (receipt pulling); our own cautious figure, Alibaba
        # answers Throttling.User past the account's limit.
        "aliyun_sms_query": 50,
    }
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    deadline_seconds: float = 6 * 3600
    failover_after: int = 2
    claim_timeout_seconds: float = 120.0
    receipt_timeout_seconds: float = 3 * 24 * 3600
    # In the last this-many seconds before a report-less Alibaba SMS becomes `unknown`, ask
    # QuerySendDetails what became of it (govconnect/notices/receipt_pull.py); 0: never ask.
    receipt_pull_before_seconds: float = Field(default=6 * 3600, ge=0)
    sweep_interval_seconds: float = 10.0
    fanout_page: int = 1000
    # Deliveries per send job: each job costs a claim, a record, a notice read and an arq round trip
    # whatever its size; 250 took the 100,000-subscriber bench from 102 s to 93 s (500: no better).
    send_chunk: int = 250
    send_concurrency: int = 50
    # At most this many normal SMS a Beijing day to one number, all agencies together (0: no cap).
    daily_sms_cap: int = Field(default=0, ge=0)

    @field_validator("sms_weights")
    @classmethod
    def _weights_are_counts(cls, weights: dict[str, int]) -> dict[str, int]:
        if any(weight < 0 for weight in weights.values()):
            raise ValueError("SMS weights must be 0 or more")
        if weights and not any(weights.values()):
            raise ValueError("at least one SMS weight must be above 0")
        return weights

    @model_validator(mode="after")
    def _weights_name_sms_providers(self) -> NoticePipelineSettings:
        unknown = set(self.sms_weights) - set(self.sms_providers)
        if unknown:
            raise ValueError(f"SMS weights for providers not in SMS_PROVIDERS: {sorted(unknown)}")
        return self


class RetentionSettings(BaseModel):
    """How long records are kept (days); reasons in docs/operations.md. Reports keep only counts, forever."""

    deliveries_days: int = Field(default=180, ge=1)  # one row per person reached: phone numbers, outcomes
    notices_days: int = Field(default=1095, ge=1)  # non-public notices; public ones stay on the site
    audit_days: int = Field(default=1095, ge=180)  # 网络安全法 art. 21 asks for at least six months of logs
    batch_size: int = Field(default=2000, ge=1)  # rows per purge transaction, so sending never waits long
    daily_hour_beijing: int = Field(default=3, ge=0, le=23)  # when the worker's daily purge runs


class MonitoringSettings(BaseModel):
    """Provider circuits, health windows and the worker's metrics port."""

    circuit_failures: int = Field(default=5, ge=1)  # failing provider calls in a row that open a circuit
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0)  # open this long, then one probe may go
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)  # first port tried; 0 = no metrics server
    queue_age_warning_seconds: float = 600.0  # the status page flags older pending deliveries
    feed_stale_seconds: float = 6 * 3600.0  # the status page flags a TV feed with nothing newer


class ProviderSandboxSettings(BaseModel):
    """The provider sandbox (channels/sandbox/): `govconnect sandbox` alone, or in-process under `serve --demo`."""

    in_process: bool = False  # mount the sandbox inside the gateway app (serve --demo sets it)
    mount_path: str = "/_provider_sandbox"
    callback_base_url: str = ""  # where the sandbox pushes reports; empty means PUBLIC_BASE_URL
    report_delay: float = 1.0
    # The sandbox's DingTalk users read a work notice this many seconds after it is sent (0: never).
    dingtalk_read_after: float = Field(default=30.0, ge=0)
    # Messages (and pushes, send details ...) of each provider the sandbox keeps; counts cover all.
    keep_messages: int = Field(default=10_000, ge=1)


class Settings(BaseSettings):
    """Effective configuration of one GovConnect process."""

    model_config = SettingsConfigDict(
        env_prefix="GOVCONNECT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default=Path("./var"), description="Where the SQLite file and search index live")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in DATA_DIR")
    redis_url: str = Field(default="", description="Redis URL; empty means embedded mode (in-process worker)")
    secret_key: SecretStr = Field(default=SecretStr(DEFAULT_SECRET), description="Signs sessions and callbacks")
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="Base URL for links we send")
    provider_proxy: str = Field(default="", description="Egress proxy for provider HTTP APIs (http://host:port)")
    demo: bool = Field(default=False, description="Demo mode: demo data, in-process provider sandbox")
    test_mode: bool = Field(default=False, description="Allows loopback callback URLs; for tests only")
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted request body")
    max_upload_bytes: int = Field(
        default=128 * 1_048_576, description="Largest audience file upload (streamed to disk, not memory)"
    )
    api_rate_limit: str = Field(default="1200/minute", description="Per API key request limit")
    anonymous_rate_limit: str = Field(
        default="600/minute", description="Per client address limit on anonymous pages, feeds and directory search"
    )
    code_limit_per_number: str = Field(
        default="1/minute;5/hour;10/day", description="Verification codes one mobile number may ask for"
    )
    code_limit_per_address: str = Field(
        default="20/10 minutes",
        description="Verification codes one client address may ask for (loose: a carrier NAT serves many people)",
    )
    api_concurrency_per_caller: int = Field(
        default=4, ge=1, description="Requests in progress per agency (or client address); more wait, then 503"
    )
    api_concurrency_total: int = Field(default=24, ge=1, description="Requests in progress in all; more get 503")
    api_queue_seconds: float = Field(default=1.0, ge=0, description="How long a request waits for its turn")
    api_pool_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a request waits for a database connection before 503"
    )
    queue_name: str = Field(default="govconnect:queue", description="arq queue name")
    log_level: str = "INFO"
    callback_allowed_networks: str = Field(
        default="",
        description="Private networks (comma-separated CIDRs) agency callback URLs may point into; empty: none",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token /metrics demands; empty: /metrics is closed on the main port"
    )
    metrics_listen: str = Field(
        default="", description="host:port of a separate, token-free metrics listener started by `serve`"
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies trusted for X-Forwarded-For/-Proto (comma-separated IPs or CIDRs); empty: none",
    )
    callback_token: SecretStr = Field(
        default=SecretStr(""),
        description="Expected as ?token= on provider callback URLs; empty derives from SECRET_KEY",
    )

    aliyun_sms: AliyunSmsSettings = AliyunSmsSettings()
    cmpp: CmppSettings = CmppSettings()
    aliyun_voice: AliyunVoiceSettings = AliyunVoiceSettings()
    wechat_mp: WechatMpSettings = WechatMpSettings()
    wecom: WecomSettings = WecomSettings()
    dingtalk: DingtalkSettings = DingtalkSettings()
    weibo: WeiboSettings = WeiboSettings()
    notices: NoticePipelineSettings = NoticePipelineSettings()
    sandbox: ProviderSandboxSettings = ProviderSandboxSettings()
    retention: RetentionSettings = RetentionSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @field_validator("api_rate_limit", "anonymous_rate_limit", "code_limit_per_number", "code_limit_per_address")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '1/minute;5/hour': {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_url(cls, value: str) -> str:
        # Accept the common spellings and always use the psycopg 3 driver.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        # Every command signs something (sessions, unsubscribe links, agency callbacks, subscriber
        # tokens); a known key would let anyone forge them. Only demo mode may start without one
        # (`serve --demo` then keeps a random key in DATA_DIR).
        if self.secret_is_default() and not self.demo:
            raise ValueError(
                "GOVCONNECT_SECRET_KEY is not set: set it to a long random value"
                " (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`),"
                " or use `govconnect serve --demo` to try GovConnect"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'govconnect.db').resolve()}"

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured and work runs in the in-process worker."""
        return not self.redis_url

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite."""
        return self.effective_database_url.startswith("sqlite")

    def secret_is_default(self) -> bool:
        """True when SECRET_KEY was never set."""
        return self.secret_key.get_secret_value() in ("", DEFAULT_SECRET)

    def masked(self) -> dict[str, Any]:
        """Settings as a flat dict with secrets and URL passwords masked, for display."""
        out: dict[str, Any] = {}

        def walk(prefix: str, model: BaseModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                key = f"{prefix}{name}".upper()
                if isinstance(value, BaseModel):
                    walk(f"{prefix}{name}__", value)
                elif isinstance(value, SecretStr):
                    out[key] = "********" if value.get_secret_value() else ""
                elif isinstance(value, str) and "://" in value:
                    out[key] = mask_url_password(value)  # any URL: database, redis, proxy, providers
                else:
                    out[key] = str(value) if isinstance(value, Path) else value

        walk("", self)
        out["DATABASE_URL (effective)"] = mask_url_password(self.effective_database_url)
        return out


def mask_url_password(url: str) -> str:
    """Hide a URL's credentials: the password of user:pw@, a lone user@ (often a token), secret query values."""
    from govconnect.security import mask_secrets_in_text

    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    authority_end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        creds, host = authority.rsplit("@", 1)
        user = creds.split(":", 1)[0] if ":" in creds else ""
        authority = f"{user}:********@{host}" if user else f"********@{host}"
    return f"{scheme}://{authority}{mask_secrets_in_text(tail)}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
