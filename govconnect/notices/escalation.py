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

A notice completes when every delivery written so far is final: DingTalk deliveries are final on
send, so a notice is often `completed` before its escalation starts. Escalation goes on after
that (only `cancelled` / `retracted` stop it); `completed_at` stays the first round's end and the
notice's `escalation.open` counts the SMS and calls still under way.
"""

from __future__ import annotations

import logging
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


def _unread(engine: Engine, moment: datetime) -> list[Any]:
    """(notice id, urgency, first delivery's params, mobile) of people due for an SMS."""
    address = or_(
        and_(D.c.channel == "dingtalk", C.c.dingtalk_userid == D.c.recipient),
        and_(D.c.channel == "wecom", C.c.external_id == D.c.recipient),
    )
    with engine.connect() as conn:
        return list(
            conn.execute(
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
        )


def _sms_not_reached(engine: Engine, moment: datetime) -> list[Any]:
    """(notice id, urgency, params, number) of SMS steps that failed or ended unknown, on notices with a voice step."""
    with engine.connect() as conn:
        return list(
            conn.execute(
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
        )


def _answered(engine: Engine, notice_ids: list[str]) -> set[tuple[str, str]]:
    """(notice id, number) of people who replied to these notices by SMS: they have read it."""
    if not notice_ids:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(select(R.c.notice_id, R.c.sender).where(R.c.notice_id.in_(notice_ids))).all()
    return {(str(notice_id), str(sender)) for notice_id, sender in rows}


@job
async def escalate_unread(ctx: dict[str, Any]) -> dict[str, int]:
    """Write and queue SMS deliveries (and voice calls) for people who have not read an escalating notice in time."""
    engine: Engine = ctx["engine"]
    settings = ctx["settings"]
    moment = now(ctx)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    urgency: dict[str, str] = {}
    deadline = moment + timedelta(seconds=settings.notices.deadline_seconds)
    unread = await run_db(_unread, engine, moment)
    answered = await run_db(_answered, engine, sorted({row[0] for row in unread}))

    def add(notice_id: str, urgent: str, channel: str, phone: str, params: Any) -> None:
        urgency[notice_id] = urgent
        priority = 0 if urgent == "urgent" else 1
        rows.setdefault((notice_id, channel), []).append(
            _row(notice_id, channel, phone, dict(params or {}), None, priority, moment, deadline)
        )

    for notice_id, urgent, after, voice_after, sent_at, params, mobile in unread:
        phone = normalise_mobile(mobile or "")
        if phone is None or sent_at is None or (notice_id, phone) in answered:
            continue
        waited = moment - sent_at
        if waited >= timedelta(seconds=after):
            add(notice_id, urgent, "sms", phone, params)
        if voice_after is not None and urgent == "urgent" and waited >= timedelta(seconds=voice_after):
            add(notice_id, urgent, "voice", phone, params)
    for notice_id, urgent, params, number in await run_db(_sms_not_reached, engine, moment):
        add(notice_id, urgent, "voice", number, params)
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
