"""Escalation: a staff notice sent by DingTalk or WeCom first goes out by SMS to whoever has not read it in time.

A notice with `escalation: {"after_minutes": N}` keeps its first channels; every sweep looks at
its `dingtalk` / `wecom` deliveries sent more than N minutes ago and not read (`read_at` unset;
WeCom reports no reading, so its people are escalated unless they were also reached by SMS),
finds each person's mobile in the directory (by DingTalk id or WeCom id) and writes an `sms`
delivery for them. The delivery table's (notice, channel, recipient) key makes it happen once
per person, however many sweeps look; each step is a delivery with its own status, so the
notice's progress shows per channel who was reached, who read it (`dingtalk.read`) and who was
escalated (`sms`). Only notices from the last `LOOKBACK` are looked at.

The voice step (`"voice_after_minutes": M`): a `voice` delivery (a TTS notification call) to the
same mobile when the person's SMS ended `failed` or `unknown`, or, for an urgent notice, when the
person has still not read it M minutes after the first message (the call does not wait for the
SMS's report). The same key makes it once per person. Someone who answered a meeting notice
(tapped 参加/不参加, which marks the first delivery read, or replied 1/2 by SMS) is not called.

Completion: DingTalk deliveries are final on send, so every delivery of an escalating notice may
be final before anyone has been escalated. Such a notice stays `sending` while `escalation_owed`
finds a step still to write (someone unread, or not reached by SMS, whose SMS or call is not
written yet, due now or later), and completes once those are written and final. Staying
`sending` keeps the notice cancellable (a completed notice can only be retracted), and cancelling
it stops the SMS and calls not yet written or sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.engine import Connection, Engine

from contacts.models import Contact
from contacts.phones import normalise_mobile
from govconnect.jobs import job
from govconnect.notices.fanout import _enqueue_inserted, _insert_page, _row, hold_policy
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import now, run_db
from govconnect.notices.reply_models import NoticeReply

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
C = Contact.__table__  # type: ignore[attr-defined]
R = NoticeReply.__table__  # type: ignore[attr-defined]
FIRST_CHANNELS = ("dingtalk", "wecom")
REACHED = ("sent", "delivered")
LOOKBACK = timedelta(days=2)
ENDED = ("cancelled", "retracted")
NOT_REACHED = ("failed", "unknown")  # an SMS step that ended so is followed by a call
OPEN = ("queued", "sending", "sent")


def _unread(conn: Connection, moment: datetime, notice_id: str | None = None) -> list[Any]:
    """(notice id, urgency, waits, first delivery's sent time and params, mobile) of people who have not read."""
    address = or_(
        and_(D.c.channel == "dingtalk", C.c.dingtalk_userid == D.c.recipient),
        and_(D.c.channel == "wecom", C.c.external_id == D.c.recipient),
    )
    query = (
        select(
            N.c.id,
            N.c.urgency,
            N.c.escalate_after_seconds,
            N.c.escalate_voice_after_seconds,
            D.c.sent_at,
            D.c.params,
            C.c.mobile,
        )
        .join(D, D.c.notice_id == N.c.id)
        .join(C, address)
        .where(
            N.c.escalate_after_seconds.is_not(None),
            N.c.created_at >= moment - LOOKBACK,
            N.c.status.not_in(ENDED),
            D.c.channel.in_(FIRST_CHANNELS),
            D.c.status.in_(REACHED),
            D.c.read_at.is_(None),
            C.c.mobile != "",
        )
    )
    if notice_id is not None:
        query = query.where(N.c.id == notice_id)
    return list(conn.execute(query))


def _sms_not_reached(conn: Connection, moment: datetime, notice_id: str | None = None) -> list[Any]:
    """(notice id, urgency, params, number) of SMS steps that failed or ended unknown, on notices with a voice step."""
    query = (
        select(N.c.id, N.c.urgency, D.c.params, D.c.recipient)
        .join(D, D.c.notice_id == N.c.id)
        .where(
            N.c.escalate_voice_after_seconds.is_not(None),
            N.c.created_at >= moment - LOOKBACK,
            N.c.status.not_in(ENDED),
            D.c.channel == "sms",
            D.c.status.in_(NOT_REACHED),
        )
    )
    if notice_id is not None:
        query = query.where(N.c.id == notice_id)
    return list(conn.execute(query))


def _answered(conn: Connection, notice_ids: list[str]) -> set[tuple[str, str]]:
    """(notice id, number) of people who replied to these notices by SMS: they have read it."""
    if not notice_ids:
        return set()
    rows = conn.execute(select(R.c.notice_id, R.c.sender).where(R.c.notice_id.in_(notice_ids))).all()
    return {(str(notice_id), str(sender)) for notice_id, sender in rows}


@dataclass(frozen=True)
class Step:
    """One escalation delivery to write: an SMS or a call to a person's mobile."""

    notice_id: str
    urgency: str
    channel: str
    phone: str
    params: dict[str, Any]


def _steps(conn: Connection, moment: datetime, notice_id: str | None, due_only: bool) -> list[Step]:
    """The escalation steps of people still unread (or not reached by SMS): those due now, or with
    `due_only` False every step that is due or will be if nobody reads it meanwhile."""
    unread = _unread(conn, moment, notice_id)
    answered = _answered(conn, sorted({row[0] for row in unread}))
    steps: list[Step] = []
    for found, urgent, after, voice_after, sent_at, params, mobile in unread:
        phone = normalise_mobile(mobile or "")
        if phone is None or sent_at is None or (found, phone) in answered:
            continue
        waited = moment - sent_at
        if not due_only or waited >= timedelta(seconds=after):
            steps.append(Step(found, urgent, "sms", phone, dict(params or {})))
        if (
            voice_after is not None
            and urgent == "urgent"
            and (not due_only or waited >= timedelta(seconds=voice_after))
        ):
            steps.append(Step(found, urgent, "voice", phone, dict(params or {})))
    for found, urgent, params, number in _sms_not_reached(conn, moment, notice_id):
        steps.append(Step(found, urgent, "voice", number, dict(params or {})))
    return steps


def _due_steps(engine: Engine, moment: datetime) -> list[Step]:
    with engine.connect() as conn:
        return _steps(conn, moment, None, due_only=True)


def escalation_owed(conn: Connection, notice_id: str, moment: datetime) -> bool:
    """Whether an escalating notice may still write an SMS or a call (so it is not completed yet):
    someone unread, or not reached by SMS, whose next step has not been written."""
    steps = _steps(conn, moment, notice_id, due_only=False)
    if not steps:
        return False
    written = {
        (str(channel), str(recipient))
        for channel, recipient in conn.execute(
            select(D.c.channel, D.c.recipient).where(D.c.notice_id == notice_id, D.c.channel.in_(("sms", "voice")))
        )
    }
    return any((step.channel, step.phone) not in written for step in steps)


@job
async def escalate_unread(ctx: dict[str, Any]) -> dict[str, int]:
    """Write and queue SMS deliveries (and voice calls) for people who have not read an escalating notice in time."""
    engine: Engine = ctx["engine"]
    settings = ctx["settings"]
    moment = now(ctx)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    urgency: dict[str, str] = {}
    deadline = moment + timedelta(seconds=settings.notices.deadline_seconds)
    for step in await run_db(_due_steps, engine, moment):
        urgency[step.notice_id] = step.urgency
        priority = 0 if step.urgency == "urgent" else 1
        rows.setdefault((step.notice_id, step.channel), []).append(
            _row(step.notice_id, step.channel, step.phone, step.params, None, priority, moment, deadline)
        )
    escalated = 0
    for (notice_id, channel), page in rows.items():
        notice = await run_db(_notice, engine, notice_id)
        policy = await run_db(hold_policy, engine, settings, notice)
        inserted = await run_db(_insert_page, engine, notice_id, page, "", policy, moment)
        if inserted:
            log.info("notice %s: %d people escalated to %s", notice_id, len(inserted), channel)
            await _enqueue_inserted(ctx, notice_id, inserted, urgency[notice_id] == "urgent")
            escalated += len(inserted)
    return {"escalated": escalated}


def escalation_progress(conn: Connection, notice_id: str) -> dict[str, int]:
    """People of an escalating notice: addressed, reached and read by the first channel; escalated by SMS / voice."""
    first = D.c.channel.in_(FIRST_CHANNELS)
    person = func.count(distinct(D.c.recipient))
    figures = conn.execute(
        select(
            select(person).where(D.c.notice_id == notice_id, first).scalar_subquery(),
            select(person).where(D.c.notice_id == notice_id, first, D.c.status.in_(REACHED)).scalar_subquery(),
            select(person).where(D.c.notice_id == notice_id, first, D.c.read_at.is_not(None)).scalar_subquery(),
            select(person).where(D.c.notice_id == notice_id, D.c.channel == "sms").scalar_subquery(),
            select(person).where(D.c.notice_id == notice_id, D.c.channel == "voice").scalar_subquery(),
            select(func.count())
            .where(D.c.notice_id == notice_id, D.c.channel.in_(("sms", "voice")), D.c.status.in_(OPEN))
            .scalar_subquery(),
        )
    ).one()
    return dict(zip(("people", "reached", "read", "sms", "voice", "open"), (int(f or 0) for f in figures), strict=True))


def _notice(engine: Engine, notice_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(N).where(N.c.id == notice_id)).first()
