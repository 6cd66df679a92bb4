"""Recurring notices (daily, weekly, monthly in Beijing time, until an end date) and the governance tick.

Each occurrence becomes its own notice, created `OCCURRENCE_LEAD` ahead of its time as a scheduled
notice by the schedule's drafter, so it goes through the same sign-off and shows its own progress.
The tick (run by the sweeper) also expires notices still awaiting sign-off when their send_at passes.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import CHINA_TZ
from govconnect.errors import DomainError, Invalid, NotFound
from govconnect.governance.models import NoticeSchedule
from govconnect.governance.notify import notify_approvers, notify_drafter_expired
from govconnect.notices import service
from govconnect.notices.gate import change_status
from govconnect.notices.intake import enqueue_fanout
from govconnect.notices.models import Notice
from govconnect.notices.policy import run_db
from govconnect.notices.schemas import NoticeCreate
from govconnect.settings import Settings

log = logging.getLogger("govconnect.governance")
OCCURRENCE_LEAD = timedelta(hours=24)
EXPIRER = Actor.system("approvals")


def occurrence(first_at: datetime, rule: str, index: int) -> datetime:
    """The `index`-th occurrence (0 is the first): same Beijing wall time; monthly keeps the day, clamped."""
    local = first_at.astimezone(CHINA_TZ)
    if rule == "daily":
        day = local.date() + timedelta(days=index)
    elif rule == "weekly":
        day = local.date() + timedelta(weeks=index)
    else:
        months = local.month - 1 + index
        year, month = local.year + months // 12, months % 12 + 1
        day = date(year, month, min(local.day, calendar.monthrange(year, month)[1]))
    return datetime.combine(day, local.timetz()).astimezone(first_at.tzinfo)


def create_schedule(
    session: Session,
    agency: Agency,
    notice: NoticeCreate,
    rule: str,
    ends_on: date,
    actor: Actor,
    settings: Settings,
    moment: datetime,
) -> NoticeSchedule:
    """Check the notice as if sent now, and keep the recurring schedule (the caller commits)."""
    if notice.send_at is None:
        raise Invalid("send_at_required", "循环通知需要首次发送时间 send_at / A recurring notice needs send_at")
    checked = service.validate_notice(session, agency, notice, settings, moment)
    first_at = checked.send_at
    if first_at is None:  # validation keeps a given send_at; this only narrows the type
        raise Invalid("send_at_required", "循环通知需要首次发送时间 send_at / A recurring notice needs send_at")
    if first_at.astimezone(CHINA_TZ).date() > ends_on:
        raise Invalid("ends_before_start", "结束日期早于首次发送 / ends_on is before the first occurrence")
    schedule = NoticeSchedule(
        agency_id=agency.id or 0,
        created_by=actor.label,
        request=notice.model_dump(mode="json", exclude={"send_at"}),
        rule=rule,
        first_at=first_at,
        ends_on=ends_on,
        next_at=first_at,
        created_at=moment,
    )
    session.add(schedule)
    session.flush()
    record_audit(
        session,
        actor,
        "schedule_change",
        "schedule",
        schedule.id or 0,
        {"created": True, "rule": rule, "first_at": first_at, "ends_on": ends_on, "title": notice.title},
    )
    return schedule


def cancel_schedule(
    session: Session, agency: Agency, schedule_id: int, actor: Actor, moment: datetime
) -> NoticeSchedule:
    """Stop a schedule; its occurrences that have not started are cancelled."""
    schedule = get_schedule(session, agency, schedule_id)
    schedule.cancelled_at = moment
    schedule.next_at = None
    session.add(schedule)
    for notice in session.exec(select(Notice).where(Notice.schedule_id == schedule.id)).all():
        if notice.status in ("draft", "pending_approval", "approved", "scheduled", "rejected"):
            change_status(session, notice.id, "cancelled", actor, values={"cancelled_at": moment}, moment=moment)
    record_audit(session, actor, "schedule_change", "schedule", schedule.id or 0, {"cancelled": True})
    session.commit()
    return schedule


def get_schedule(session: Session, agency: Agency, schedule_id: int) -> NoticeSchedule:
    """The agency's schedule, or 404."""
    schedule = session.get(NoticeSchedule, schedule_id)
    if schedule is None or schedule.agency_id != agency.id:
        raise NotFound()
    return schedule


def schedule_notices(session: Session, schedule_id: int) -> list[str]:
    """Ids of the notices a schedule has created, oldest first."""
    rows = session.exec(select(Notice.id).where(Notice.schedule_id == schedule_id).order_by(col(Notice.send_at))).all()
    return list(rows)


def _materialise_one(session: Session, schedule: NoticeSchedule, settings: Settings, moment: datetime) -> list[Notice]:
    made: list[Notice] = []
    agency = session.get(Agency, schedule.agency_id)
    if agency is None:
        return made
    actor = Actor(schedule.created_by, schedule.agency_id, "schedule")
    while schedule.next_at is not None and schedule.next_at <= moment + OCCURRENCE_LEAD:
        index = schedule.occurrences
        data = NoticeCreate.model_validate({**schedule.request, "send_at": schedule.next_at})
        try:
            notice, created = service.accept_notice(
                session,
                agency,
                data,
                f"schedule-{schedule.id}-{index}",
                settings,
                moment,
                actor,
                schedule_id=schedule.id,
            )
            if created:
                made.append(notice)
        except DomainError as exc:  # an occurrence the audience or limits refuse is skipped, and said so
            session.rollback()
            record_audit(
                session,
                actor,
                "schedule_change",
                "schedule",
                schedule.id or 0,
                {"occurrence": index, "skipped": exc.code},
            )
        schedule = session.get(NoticeSchedule, schedule.id) or schedule
        schedule.occurrences = index + 1
        following = occurrence(schedule.first_at, schedule.rule, index + 1)
        schedule.next_at = following if following.astimezone(CHINA_TZ).date() <= schedule.ends_on else None
        session.add(schedule)
        session.commit()
    return made


def governance_tick(engine: Engine, settings: Settings, moment: datetime) -> list[Notice]:
    """Create due occurrences and expire unapproved notices whose time passed; the notices to queue."""
    to_queue: list[Notice] = []
    with Session(engine, expire_on_commit=False) as session:
        due = session.exec(
            select(NoticeSchedule.id).where(
                col(NoticeSchedule.next_at).is_not(None),
                col(NoticeSchedule.next_at) <= moment + OCCURRENCE_LEAD,
                col(NoticeSchedule.cancelled_at).is_(None),
            )
        ).all()
        for schedule_id in due:
            schedule = session.get(NoticeSchedule, schedule_id)
            if schedule is not None:
                for notice in _materialise_one(session, schedule, settings, moment):
                    to_queue.append(notice)
                    agency = session.get(Agency, notice.agency_id)
                    if notice.status == "pending_approval" and agency is not None:
                        message = notify_approvers(session, agency, notice, settings, moment)
                        if message is not None:
                            to_queue.append(message)
        stale = session.exec(
            select(Notice).where(
                Notice.status == "pending_approval",
                col(Notice.send_at).is_not(None),
                col(Notice.send_at) <= moment,
            )
        ).all()
        for notice in stale:
            left = change_status(
                session,
                notice.id,
                "expired",
                EXPIRER,
                only_from=("pending_approval",),
                changes={"send_at": notice.send_at},
                moment=moment,
            )
            session.commit()
            agency = session.get(Agency, notice.agency_id)
            if left is not None and agency is not None:
                session.refresh(notice)
                message = notify_drafter_expired(session, agency, notice, settings, moment)
                if message is not None:
                    to_queue.append(message)
    return to_queue


async def run_governance_tick(ctx: dict[str, Any], moment: datetime) -> int:
    """The tick in a thread, then queue what it made; how many notices it queued."""
    notices = await run_db(governance_tick, ctx["engine"], ctx["settings"], moment)
    for notice in notices:
        await enqueue_fanout(ctx["queue"], notice, moment)
    return len(notices)
