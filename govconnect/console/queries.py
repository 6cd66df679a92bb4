"""What the console pages read: the dashboard, the notice search, why a notice is held, approval history.

Every query is scoped by the caller's agency (another agency's rows are never read) and uses the
indexed columns the API's own queries use (notice.agency_id, delivery.notice_id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, select
from sqlmodel import Session

from contacts.like import contains
from govconnect.audit.models import AuditEntry
from govconnect.clock import CHINA_TZ, utcnow
from govconnect.notices.models import CHANNELS, Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import QUIET_CHANNELS, quiet_until
from govconnect.reports.queries import agency_reports

N = Notice.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
A = AuditEntry.__table__  # type: ignore[attr-defined]
LIVE_STATUSES = ("approved", "scheduled", "accepted", "sending")


def china_day_start(moment: datetime) -> datetime:
    """Midnight (Beijing time) of the day holding `moment`."""
    local = moment.astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class NoticeFilters:
    """The notice list's search: title words, status, channel, creation date range, drafter label."""

    q: str = ""
    status: str = ""
    channel: str = ""
    since: date | None = None
    until: date | None = None
    drafter: str = ""


def search_notices(
    session: Session, agency_id: int, filters: NoticeFilters, limit: int, offset: int
) -> tuple[list[Notice], int]:
    """The agency's notices matching the filters, newest first, one page and the total."""
    where: list[Any] = [N.c.agency_id == agency_id]
    if filters.q:
        where.append(contains(N.c.title, filters.q))
    if filters.status:
        where.append(N.c.status == filters.status)
    if filters.channel in CHANNELS:
        where.append(contains(cast(N.c.channels, String), f'"{filters.channel}"'))
    if filters.since:
        where.append(N.c.created_at >= datetime.combine(filters.since, datetime.min.time(), tzinfo=CHINA_TZ))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), datetime.min.time(), tzinfo=CHINA_TZ)
        where.append(N.c.created_at < end)
    if filters.drafter:
        where.append(N.c.created_by == filters.drafter)
    total = session.exec(select(func.count()).select_from(N).where(*where)).scalar_one()  # type: ignore[call-overload]
    rows = session.exec(  # type: ignore[call-overload]
        select(Notice).where(*where).order_by(N.c.created_at.desc(), N.c.id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), int(total)


def drafters(session: Session, agency_id: int) -> list[str]:
    """Labels of everyone who drafted one of the agency's notices (for the drafter filter)."""
    rows = session.exec(  # type: ignore[call-overload]
        select(N.c.created_by).where(N.c.agency_id == agency_id).distinct().order_by(N.c.created_by).limit(200)
    ).scalars()
    return [r for r in rows if r]


def _notices(session: Session, *where: Any, limit: int = 20, newest: bool = True) -> list[Notice]:
    order = N.c.created_at.desc() if newest else N.c.send_at
    rows = session.exec(select(Notice).where(*where).order_by(order).limit(limit))  # type: ignore[call-overload]
    return list(rows.scalars())


def dashboard(session: Session, agency_id: int, approver_label: str | None, moment: datetime) -> dict[str, Any]:
    """Today's and scheduled notices, what waits for this approver, failures, today's delivery rate, holds."""
    start = china_day_start(moment)
    mine = N.c.agency_id == agency_id
    today = _notices(session, mine, N.c.created_at >= start)
    scheduled = _notices(session, mine, N.c.status == "scheduled", N.c.send_at > moment, newest=False)
    waiting: list[Notice] = []
    if approver_label is not None:
        waiting = [
            n
            for n in _notices(session, mine, N.c.status == "pending_approval", limit=50)
            if approver_label not in (n.created_by, n.status_changed_by)
        ]
    conn = session.connection()
    failed_weibo = conn.execute(
        select(N.c.id, N.c.title, D.c.error_code, D.c.updated_at)
        .join(N, N.c.id == D.c.notice_id)
        .where(mine, D.c.channel == "weibo", D.c.status == "failed", N.c.status != "retracted")
        .order_by(D.c.updated_at.desc())
        .limit(10)
    ).all()
    failing = conn.execute(
        select(N.c.id, N.c.title, func.count())
        .join(N, N.c.id == D.c.notice_id)
        .where(mine, N.c.created_at >= start, D.c.status == "failed")
        .group_by(N.c.id, N.c.title)
        .limit(10)
    ).all()
    held = quiet_holds(session, agency_id, moment)
    return {
        "today": today,
        "scheduled": scheduled,
        "waiting": waiting,
        "failed_weibo": failed_weibo,
        "failing": failing,
        "rate": delivery_rate(session, agency_id, start.date()),
        "held": held,
    }


def delivery_rate(session: Session, agency_id: int, day: date) -> dict[str, Any]:
    """Today's deliveries, delivered and failed from the report rollups, and the delivered share."""
    reports = agency_reports(session.connection(), [agency_id], day, day)
    totals = reports[0]["totals"] if reports else {}
    deliveries = int(totals.get("deliveries", 0) or 0)
    delivered = int(totals.get("delivered", 0) or 0)
    failed = int(totals.get("failed", 0) or 0)
    rate = round(100 * delivered / deliveries, 1) if deliveries else None
    return {"deliveries": deliveries, "delivered": delivered, "failed": failed, "percent": rate}


def quiet_holds(session: Session, agency_id: int, moment: datetime) -> list[Any]:
    """The agency's notices with SMS/voice deliveries waiting for quiet hours (22:00–07:00) to end."""
    rows = session.connection().execute(
        select(N.c.id, N.c.title, func.count(), func.min(D.c.next_attempt_at))
        .join(N, N.c.id == D.c.notice_id)
        .where(
            N.c.agency_id == agency_id,
            N.c.status.in_(LIVE_STATUSES),
            N.c.urgency != "urgent",
            D.c.status == "queued",
            D.c.channel.in_(QUIET_CHANNELS),
            D.c.next_attempt_at > moment,
        )
        .group_by(N.c.id, N.c.title)
        .limit(20)
    )
    return [r for r in rows.all() if _is_quiet_release(r[3])]


def _is_quiet_release(moment: datetime | None) -> bool:
    if moment is None:
        return False
    local = moment.astimezone(CHINA_TZ) if moment.tzinfo else moment.replace(tzinfo=CHINA_TZ)
    return local.hour == 7 and local.minute == 0


def held_reasons(session: Session, notice: Notice, progress: dict[str, Any], moment: datetime) -> list[str]:
    """Why a notice's work is waiting, in plain words (sign-off, schedule, quiet hours, rate, caps)."""
    reasons: list[str] = []
    if notice.status == "pending_approval":
        reasons.append("等待审核：审核通过后才会发送")
    elif notice.status in ("draft", "rejected"):
        reasons.append("尚未提交审核" if notice.status == "draft" else "已被退回，修改后可重新提交")
    send_at = notice.send_at
    if send_at is not None and send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=CHINA_TZ)
    if notice.status in ("scheduled", "approved", "pending_approval") and send_at and send_at > moment:
        reasons.append(f"定时发送：{send_at.astimezone(CHINA_TZ):%Y-%m-%d %H:%M}")
    if notice.status in LIVE_STATUSES:
        queued = session.connection().execute(
            select(D.c.channel, func.count(), func.min(D.c.next_attempt_at))
            .where(D.c.notice_id == notice.id, D.c.status == "queued", D.c.next_attempt_at > moment)
            .group_by(D.c.channel)
        )
        rows: Any = queued.all()
        for channel, count, first in rows:
            if channel in QUIET_CHANNELS and _is_quiet_release(first):
                reasons.append(f"静默时段：{count} 条{_channel(channel)}将于 07:00 后发送")
            else:
                reasons.append(f"限速排队：{count} 条{_channel(channel)}稍后发送")
        if notice.urgency != "urgent" and any(quiet_until(moment, c, "normal") for c in notice.channels):
            if not any(r.startswith("静默") for r in reasons):
                reasons.append("现在是静默时段（22:00–07:00），短信和语音将于 07:00 后发送")
    for channel, p in progress.items():
        if p.get("capped"):
            reasons.append(f"每人每日上限：{p['capped']} 条{_channel(channel)}未发送")
        if p.get("suppressed"):
            reasons.append(f"免打扰名单：{p['suppressed']} 条{_channel(channel)}未发送")
    return reasons


def _channel(channel: str) -> str:
    from govconnect.console.pages import CHANNEL_NAMES

    return CHANNEL_NAMES.get(channel, channel)


def approval_history(session: Session, agency_id: int, limit: int, offset: int) -> tuple[list[Any], int]:
    """Sign-off decisions on the agency's notices (each approval and each rejection), newest first."""
    where = and_(A.c.agency_id == agency_id, A.c.target_type == "notice", A.c.action.in_(("approve", "reject")))
    total = session.connection().execute(select(func.count()).select_from(A).where(where)).scalar_one()
    rows = session.connection().execute(
        select(A.c.at, A.c.actor, A.c.action, A.c.target_id, A.c.changes, N.c.title)
        .join(N, N.c.id == A.c.target_id, isouter=True)
        .where(where)
        .order_by(A.c.at.desc(), A.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total)


def now() -> datetime:
    """The current time (one place, so pages agree)."""
    return utcnow()
