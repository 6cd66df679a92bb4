"""What one delivery sends on its channel: the notice's text or its template variant, and the agency's sender.

The send job loads a `SendingProfile` once per job (the notice's variant for the channel, the
agency's SMS signature and template code) and builds each message from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from channels.base import MessageKind, OutboundMessage
from channels.catalogue import PUBLIC_CHANNELS
from govconnect.message_templates.models import NoticeTemplateUse
from govconnect.message_templates.senders import sms_identity
from govconnect.notices.policy import render
from govconnect.notices.publication import public_text

U = NoticeTemplateUse.__table__  # type: ignore[attr-defined]
UNSUBSCRIBE_PLACEHOLDER = "unsubscribe_url"


@dataclass(frozen=True)
class SendingProfile:
    """The notice's variant for one channel (empty: the notice's own text) and the agency's SMS sender."""

    variant: dict[str, Any] = field(default_factory=dict)
    sign_name: str = ""
    sms_template_code: str = ""


def load_profile(engine: Engine, notice_id: str, agency_id: int, channel: str) -> SendingProfile:
    """The profile a send job of this notice and channel uses."""
    with engine.connect() as conn:
        variants = conn.execute(select(U.c.variants).where(U.c.notice_id == notice_id)).scalar()
        identity = sms_identity(conn, agency_id) if channel == "sms" else None
    variant = dict((variants or {}).get(channel) or {})
    if identity is None:
        return SendingProfile(variant=variant)
    return SendingProfile(variant=variant, sign_name=identity.sign_name, sms_template_code=identity.template_code)


def build_message(
    reference: str,
    recipient: str,
    channel: str,
    notice: Any,
    params: dict[str, Any],
    profile: SendingProfile,
    kind: MessageKind,
    url: str,
    unsubscribe_url: str | None = None,
) -> OutboundMessage:
    """One message: the variant (or the notice's text) filled with the recipient's values."""
    values = dict(params)
    if unsubscribe_url:
        values[UNSUBSCRIBE_PLACEHOLDER] = unsubscribe_url
    variant = profile.variant
    # A public post (Weibo) has no recipient to fill a placeholder for: it carries the public text.
    fill = public_text if channel in PUBLIC_CHANNELS else (lambda template: render(template, values))
    title = fill(notice.title)
    text = fill(str(variant.get("text") or notice.body))
    template_code = ""
    template_params: dict[str, str] = {}
    if channel == "sms":
        template_code = str(variant.get("aliyun_template_code") or "")
        if template_code:
            template_params = {k: render(v, values) for k, v in (variant.get("aliyun_params") or {}).items()}
        else:
            template_code = profile.sms_template_code
            if unsubscribe_url and unsubscribe_url not in text:
                text = f"{text} 退订或管理：{unsubscribe_url}"
    elif channel == "wechat" and variant.get("template_id"):
        template_code = str(variant["template_id"])
        template_params = {k: render(v, values) for k, v in (variant.get("fields") or {}).items()}
        text = "\n".join(template_params.values())
    elif channel == "voice" and variant.get("tts_code"):
        template_code = str(variant["tts_code"])
        template_params = {k: render(v, values) for k, v in (variant.get("tts_params") or {}).items()}
    return OutboundMessage(
        reference=reference,
        recipient=recipient,
        text=text,
        title=title,
        url=url,
        template_params=template_params,
        kind=kind,
        sign_name=profile.sign_name if channel == "sms" else "",
        template_code=template_code,
    )


def template_fields(conn: Connection, notice_id: str) -> set[str]:
    """Placeholders the variants of a notice made from a template use (the audience fills them)."""
    from govconnect.message_templates.service import template_placeholders

    variants = conn.execute(select(U.c.variants).where(U.c.notice_id == notice_id)).scalar()
    return set(template_placeholders("", variants)) if variants else set()
