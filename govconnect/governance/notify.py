"""Telling people through the existing pipeline: approvers that a notice waits, drafters that it expired.

Each message is an ordinary internal SMS notice (audience: the staff members' phones), so it is
sent, retried and tracked like any other. The link goes to the staff page, which needs sign-in.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel import Session, col, select

from govconnect.agencies.models import Agency, StaffUser
from govconnect.audit.record import Actor
from govconnect.errors import DomainError
from govconnect.notices import service
from govconnect.notices.models import Notice
from govconnect.notices.schemas import AudienceSpec, NoticeCreate
from govconnect.settings import Settings

log = logging.getLogger("govconnect.governance")
NOTIFIER = Actor.system("governance")
APPROVER_ROLES = ("approver", "admin")


def _plain_title(title: str) -> str:
    # Placeholders mean nothing in a message to staff; drop their brackets so none is filled.
    return re.sub(r"\(\((\w+)\)\)", r"\1", title)[:60]


def _staff_notice(
    session: Session,
    agency: Agency,
    phones: list[str],
    title: str,
    body: str,
    key: str,
    settings: Settings,
    moment: datetime,
) -> Notice | None:
    phones = sorted({p for p in phones if p})
    if not phones:
        return None
    data = NoticeCreate(
        title=title,
        body=body,
        channels=["sms"],
        urgency="urgent",  # a sign-off waits on it: quiet hours do not apply
        audience=AudienceSpec(csv="phone\n" + "\n".join(phones)),
    )
    try:
        notice, created = service.accept_notice(
            session, agency, data, key, settings, moment, NOTIFIER, apply_policy=False
        )
    except DomainError as exc:  # e.g. the agency's daily limit: the audit log still has the event
        log.warning("staff message %s not sent: %s", key, exc.code)
        return None
    return notice if created else None


def notify_approvers(
    session: Session, agency: Agency, notice: Notice, settings: Settings, moment: datetime
) -> Notice | None:
    """An SMS to the agency's approvers (not the drafter) with a sign-in link; the message notice, if any."""
    drafters = {notice.created_by, notice.status_changed_by}
    approvers = session.exec(
        select(StaffUser).where(
            StaffUser.agency_id == agency.id, col(StaffUser.role).in_(APPROVER_ROLES), col(StaffUser.active)
        )
    ).all()
    phones = [u.phone or "" for u in approvers if f"staff:{u.id}" not in drafters]
    link = f"{settings.public_base_url.rstrip('/')}/m/staff/notices/{notice.id}"
    body = f"【待审核】{_plain_title(notice.title)}，请登录审核：{link}"
    key = f"approval-{notice.id}-{int(moment.timestamp())}"
    return _staff_notice(session, agency, phones, "待审核通知", body, key, settings, moment)


def notify_drafter_expired(
    session: Session, agency: Agency, notice: Notice, settings: Settings, moment: datetime
) -> Notice | None:
    """An SMS to the staff drafter of a scheduled notice that was not approved in time (keys see the status)."""
    kind, _, ident = notice.created_by.partition(":")
    if kind != "staff" or not ident.isdigit():
        return None
    drafter = session.get(StaffUser, int(ident))
    if drafter is None or not drafter.phone:
        return None
    link = f"{settings.public_base_url.rstrip('/')}/m/staff/notices/{notice.id}"
    body = f"【未发送】{_plain_title(notice.title)} 到定时发送时间仍未审核，已停止发送：{link}"
    return _staff_notice(
        session, agency, [drafter.phone], "通知未审核已过期", body, f"expired-{notice.id}", settings, moment
    )
