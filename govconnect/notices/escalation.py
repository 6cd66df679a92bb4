"""Escalation: a staff notice sent by DingTalk or WeCom first goes out by SMS to whoever has not read it in time.

A notice with `escalation: {"after_minutes": N}` keeps its first channels; every sweep looks at
its `dingtalk` / `wecom` deliveries sent more than N minutes ago and not read (`read_at` unset;
WeCom reports no reading, so its people are escalated unless they were also reached by SMS),
finds each person's mobile in the directory (by DingTalk id or WeCom id) and writes an `sms`
delivery for them. The delivery table's (notice, channel, recipient) key makes it happen once
per person, however many sweeps look; each step is a delivery with its own status, so the
notice's progress shows per channel who was reached, who read it (`dingtalk.read`) and who was
escalated (`sms`). Only notices from the last `LOOKBACK` are looked at.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine

from contacts.models import Contact
from contacts.phones import normalise_mobile
from govconnect.jobs import job
from govconnect.notices.fanout import _enqueue_inserted, _insert_page, _row, hold_policy
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import now, run_db

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
C = Contact.__table__  # type: ignore[attr-defined]
FIRST_CHANNELS = ("dingtalk", "wecom")
REACHED = ("sent", "delivered")
LOOKBACK = timedelta(days=2)
ENDED = ("cancelled", "retracted")


def _unread(engine: Engine, moment: datetime) -> list[Any]:
    """(notice id, urgency, first delivery's params, mobile) of people due for an SMS."""
    address = or_(
        and_(D.c.channel == "dingtalk", C.c.dingtalk_userid == D.c.recipient),
        and_(D.c.channel == "wecom", C.c.external_id == D.c.recipient),
    )
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(N.c.id, N.c.urgency, N.c.escalate_after_seconds, D.c.sent_at, D.c.params, C.c.mobile)
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


@job
async def escalate_unread(ctx: dict[str, Any]) -> dict[str, int]:
    """Write and queue SMS deliveries for people who have not read an escalating notice in time."""
    engine: Engine = ctx["engine"]
    settings = ctx["settings"]
    moment = now(ctx)
    rows: dict[str, list[dict[str, Any]]] = {}
    urgency: dict[str, str] = {}
    deadline = moment + timedelta(seconds=settings.notices.deadline_seconds)
    for notice_id, urgent, after, sent_at, params, mobile in await run_db(_unread, engine, moment):
        phone = normalise_mobile(mobile or "")
        if phone is None or sent_at is None or sent_at > moment - timedelta(seconds=after):
            continue
        urgency[notice_id] = urgent
        priority = 0 if urgent == "urgent" else 1
        rows.setdefault(notice_id, []).append(
            _row(notice_id, "sms", phone, dict(params or {}), None, priority, moment, deadline)
        )
    escalated = 0
    for notice_id, page in rows.items():
        notice = await run_db(_notice, engine, notice_id)
        policy = await run_db(hold_policy, engine, settings, notice)
        inserted = await run_db(_insert_page, engine, notice_id, page, "", policy, moment)
        if inserted:
            log.info("notice %s: %d people escalated to SMS", notice_id, len(inserted))
            await _enqueue_inserted(ctx, notice_id, inserted, urgency[notice_id] == "urgent")
            escalated += len(inserted)
    return {"escalated": escalated}


def _notice(engine: Engine, notice_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(N).where(N.c.id == notice_id)).first()
