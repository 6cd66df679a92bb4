"""Agency SMS senders: each agency's own signature (【衢州市应急管理局】) and Alibaba template code.

Agencies without their own keep the settings' default (`GOVCONNECT_ALIYUN_SMS__SIGN_NAME`,
`…__TEMPLATE_CODE`). The same row holds the agency's policy for urgent warnings and the
suppression list.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govconnect.clock import utcnow
from govconnect.message_templates.models import AgencySender

S = AgencySender.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SmsIdentity:
    """Signature and free-text template code an agency's SMS go out with ('' = the settings' default)."""

    sign_name: str = ""
    template_code: str = ""


def urgent_ignores_suppression(conn: Connection, agency_id: int) -> bool:
    """Whether the agency lets urgent 预警 reach numbers on the suppression list (default: no)."""
    value = conn.execute(select(S.c.urgent_ignores_suppression).where(S.c.agency_id == agency_id)).scalar()
    return bool(value)


def sms_identity(conn: Connection, agency_id: int) -> SmsIdentity:
    """The agency's own SMS signature and template code, if it has them."""
    row = conn.execute(select(S.c.sms_sign_name, S.c.sms_template_code).where(S.c.agency_id == agency_id)).first()
    if row is None:
        return SmsIdentity()
    return SmsIdentity(sign_name=row[0] or "", template_code=row[1] or "")


def sender_of(session: Session, agency_id: int) -> AgencySender:
    """The agency's sender row (a blank one, unsaved, when it has none)."""
    return session.get(AgencySender, agency_id) or AgencySender(agency_id=agency_id)


def save_sender(
    session: Session, agency_id: int, sign_name: str, template_code: str, urgent_ignores: bool
) -> AgencySender:
    """Set the agency's signature, template code and urgent policy (the caller commits)."""
    sender = session.get(AgencySender, agency_id) or AgencySender(agency_id=agency_id)
    sender.sms_sign_name = sign_name.strip().strip("【】")
    sender.sms_template_code = template_code.strip()
    sender.urgent_ignores_suppression = urgent_ignores
    sender.updated_at = utcnow()
    session.add(sender)
    session.flush()
    return sender
