"""WeChat official account: template messages, the shared access token, callback events.

Template messages go to an openid with our reference as `client_msg_id` (WeChat sends one
message per openid + client_msg_id, so a resend after a timeout is not a duplicate). Delivery
is reported later by a `TEMPLATESENDJOBFINISH` event carrying only the `MsgID`, so receipts
match by provider id.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPE/ENTITY refused before parsing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from channels.base import Channel, OutboundMessage, Receipt, SendResult
from channels.tokens import AccessToken, TokenStore
from channels.wechat_common import SYSTEM_BUSY, TOKEN_INVALID, fetch_token, post_with_token

NOT_FOLLOWING = 43004
DAILY_QUOTA = 45009
QUOTA_RETRY_AFTER = 3600.0
PERMANENT = {
    NOT_FOLLOWING: "user does not follow",
    40003: "invalid openid",
    40037: "invalid template_id",
    47003: "template data invalid",
    41028: "invalid form_id",
    43101: "user refused messages",
    40036: "invalid template_id size",
}


@dataclass(frozen=True)
class WechatMpConfig:
    """The official account's credentials and default template."""

    base_url: str
    appid: str
    secret: str
    template_id: str


class WechatMp(Channel):
    """Template messages to followers of the official account."""

    channel = "wechat"
    provider = "wechat_mp"
    max_batch = 1

    def __init__(
        self, config: WechatMpConfig, client: httpx.AsyncClient, token_store: TokenStore | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.base = config.base_url.rstrip("/") + "/"
        self.token = AccessToken(f"wechat_mp:{config.appid}", self._fetch_token, token_store)

    async def _fetch_token(self) -> tuple[str, float]:
        return await fetch_token(
            self.client,
            self.base + "cgi-bin/token",
            {"grant_type": "client_credential", "appid": self.config.appid, "secret": self.config.secret},
        )

    def _data(self, message: OutboundMessage) -> dict[str, dict[str, str]]:
        if message.template_params:
            return {k: {"value": v} for k, v in message.template_params.items()}
        return {"title": {"value": message.title}, "content": {"value": message.text}}

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        (message,) = messages
        payload: dict[str, object] = {
            "touser": message.recipient,
            "template_id": message.template_code or self.config.template_id,
            "data": self._data(message),
            "client_msg_id": message.reference,
        }
        if message.url:
            payload["url"] = message.url
        body, retry_after = await post_with_token(
            self.client, self.token, self.base + "cgi-bin/message/template/send", payload
        )
        errcode = int(body.get("errcode") or 0)
        reason = str(body.get("errmsg") or "")
        ref = message.reference
        if errcode == 0:
            return [SendResult.accepted(ref, str(body.get("msgid") or ""))]
        if errcode == DAILY_QUOTA:
            return [SendResult.retryable(ref, str(errcode), reason, retry_after or QUOTA_RETRY_AFTER)]
        if errcode == SYSTEM_BUSY or errcode in TOKEN_INVALID:
            return [SendResult.retryable(ref, str(errcode), reason, retry_after)]
        return [SendResult.permanent(ref, str(errcode), reason or PERMANENT.get(errcode, ""))]


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """WeChat's callback check: signature == sha1(sorted(token, timestamp, nonce) joined)."""
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode(), usedforsecurity=False).hexdigest()
    # As bytes: compare_digest on str raises TypeError for non-ASCII input.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass"))


def callback_signature(token: str, timestamp: str, nonce: str) -> str:
    """The signature WeChat puts on a callback URL (for the sandbox and tests)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class WechatEvent:
    """One pushed XML message of type `event`, or another pushed message."""

    msg_type: str
    event: str
    openid: str
    to_user: str
    created_at: datetime | None
    msg_id: str = ""
    status: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def is_subscribe(self) -> bool:
        """A follow."""
        return self.msg_type == "event" and self.event == "subscribe"

    @property
    def is_unsubscribe(self) -> bool:
        """An unfollow: stop sending to this openid."""
        return self.msg_type == "event" and self.event == "unsubscribe"

    def receipt(self) -> Receipt | None:
        """The delivery receipt a TEMPLATESENDJOBFINISH event carries; None for other events."""
        if self.event != "TEMPLATESENDJOBFINISH":
            return None
        return Receipt(
            reference=None,
            provider_id=self.msg_id or None,
            delivered=self.status == "success",
            code=self.status,
            reason="" if self.status == "success" else self.status,
            occurred_at=self.created_at,
            provider=WechatMp.provider,
            recipient=self.openid or None,
        )


def parse_event(body: bytes | str) -> WechatEvent:
    """Parse a pushed XML message; raises ValueError when it is not well-formed WeChat XML."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ValueError("DOCTYPE and entities are not accepted")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD, see above
    except ET.ParseError as exc:
        raise ValueError("not well-formed XML") from exc
    if root.tag != "xml":
        raise ValueError("root element must be <xml>")
    fields = {child.tag: (child.text or "").strip() for child in root}
    if "MsgType" not in fields or "FromUserName" not in fields:
        raise ValueError("MsgType and FromUserName are required")
    created = fields.get("CreateTime", "")
    return WechatEvent(
        msg_type=fields["MsgType"],
        event=fields.get("Event", ""),
        openid=fields["FromUserName"],
        to_user=fields.get("ToUserName", ""),
        created_at=datetime.fromtimestamp(int(created), UTC) if created.isdigit() else None,
        msg_id=fields.get("MsgID") or fields.get("MsgId", ""),
        status=fields.get("Status", ""),
        fields=fields,
    )


def event_xml(fields: dict[str, str]) -> str:
    """Render a WeChat push message (CDATA for text, plain for numbers): used by the sandbox."""
    parts = []
    for key, value in fields.items():
        inner = value if value.isdigit() else f"<![CDATA[{value}]]>"
        parts.append(f"<{key}>{inner}</{key}>")
    return "<xml>" + "".join(parts) + "</xml>"
