"""The sweeper: re-enqueue what got stuck (lost jobs, killed workers), finish notices, expire receipts.

The database is the truth and Redis only the transport, so anything queued that no job is
handling, or claimed by a worker that died, is found here and sent again exactly once: a
delivery goes back to `queued` only from `sending`, and is sent only after a fresh claim.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.engine import Engine

from channels.catalogue import NO_RECEIPT_CHANNELS
from govconnect.audit.record import Actor
from govconnect.governance.schedules import run_governance_tick
from govconnect.jobs import job
from govconnect.notices.agency_callbacks import due_callbacks
from govconnect.notices.agency_callbacks import job_id as callback_job_id
from govconnect.notices.escalation import escalation_owed
from govconnect.notices.gate import change_status
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.notices.policy import now, run_db
from govconnect.notices.sending import enqueue_send
from govconnect.reports import pipeline_hooks as rollup_hooks
from govconnect.reports.pipeline_hooks import ROLLUP_RETURNING

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
O = NoticeOutbox.__table__  # type: ignore[attr-defined]  # noqa: E741
SWEEP_LIMIT = 20_000


def awaiting_receipt() -> Any:
    """Deliveries sent on a channel that sends receipts, and no receipt yet."""
    return and_(D.c.status == "sent", D.c.channel.not_in(NO_RECEIPT_CHANNELS))


def _expiry_candidates(settings: Any, moment: Any, cutoff: Any) -> Any:
    """Notices that may hold deliveries sent before `cutoff` and still without a receipt.

    `status` is in no index of `delivery`, so expiry reads the deliveries of these notices only:
    notices that started before the cutoff and are still sending, or were cancelled recently
    enough for a send in flight at the cancel to be waiting still.
    """
    horizon = moment - timedelta(
        seconds=settings.notices.receipt_timeout_seconds + settings.notices.claim_timeout_seconds + 24 * 3600
    )
    return select(N.c.id).where(
        func.coalesce(N.c.send_at, N.c.created_at) < cutoff,
        or_(
            N.c.status == "sending",
            and_(N.c.status == "cancelled", N.c.cancelled_at > horizon),
            and_(N.c.status == "retracted", N.c.retracted_at > horizon),
        ),
    )


def _sweep(ctx: dict[str, Any]) -> dict[str, Any]:
    engine: Engine = ctx["engine"]
    settings = ctx["settings"]
    moment = now(ctx)
    stale = moment - timedelta(seconds=settings.notices.claim_timeout_seconds)
    cutoff = moment - timedelta(seconds=settings.notices.receipt_timeout_seconds)
    with engine.begin() as conn:
        # A worker that died mid-send leaves `sending` rows: the attempt's outcome is unknown.
        reclaimed = conn.execute(
            update(D)
            .where(D.c.next_attempt_at.is_not(None), D.c.status == "sending", D.c.claimed_at < stale)
            .values(status="queued", uncertain=True, next_attempt_at=stale, updated_at=moment)
        ).rowcount
        expired_rows = conn.execute(
            update(D)
            .where(
                D.c.notice_id.in_(_expiry_candidates(settings, moment, cutoff)),
                awaiting_receipt(),
                D.c.sent_at < cutoff,
            )
            .values(status="unknown", final_at=moment, updated_at=moment)
            .returning(*ROLLUP_RETURNING)
        ).all()
        rollup_hooks.count_unknown(conn, expired_rows)
        expired = len(expired_rows)
        due: Any = conn.execute(
            select(D.c.id, D.c.notice_id, D.c.channel, N.c.urgency)
            .join(N, N.c.id == D.c.notice_id)
            .where(D.c.status == "queued", D.c.next_attempt_at <= stale, N.c.status.not_in(("cancelled", "retracted")))
            .order_by(D.c.priority, D.c.next_attempt_at)
            .limit(SWEEP_LIMIT)
        ).all()
        if due:
            # Push them forward so the next sweep does not enqueue them again while they wait in Redis.
            ids = [row[0] for row in due]
            for i in range(0, len(ids), 1000):
                conn.execute(
                    update(D)
                    .where(D.c.id.in_(ids[i : i + 1000]), D.c.status == "queued")
                    .values(next_attempt_at=moment)
                )
        outboxes = conn.execute(
            select(O.c.notice_id).where(O.c.done_at.is_(None), or_(O.c.enqueued_at.is_(None), O.c.enqueued_at < stale))
        ).all()
        for (notice_id,) in outboxes:
            conn.execute(update(O).where(O.c.notice_id == notice_id).values(enqueued_at=moment))
        sending = conn.execute(select(N.c.id).where(N.c.status == "sending")).all()
        escalating = conn.execute(
            select(N.c.id)
            .where(N.c.escalate_after_seconds.is_not(None), N.c.created_at >= moment - timedelta(days=2))
            .limit(1)
        ).first()
        callbacks = due_callbacks(conn, moment)
    groups: dict[tuple[str, str, bool], list[str]] = defaultdict(list)
    for delivery_id, notice_id, channel, urgency in due:
        groups[(notice_id, channel, urgency == "urgent")].append(delivery_id)
    return {
        "reclaimed": reclaimed,
        "expired": expired,
        "groups": groups,
        "outboxes": [row[0] for row in outboxes],
        "sending": [row[0] for row in sending],
        "callbacks": callbacks,
        "escalating": escalating is not None,
    }


@job
async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Re-enqueue stuck deliveries and unfinished fan-outs; finish notices whose deliveries are final."""
    found = await run_db(_sweep, ctx)
    chunk = ctx["settings"].notices.send_chunk
    requeued = 0
    for (notice_id, channel, urgent), ids in found["groups"].items():
        for i in range(0, len(ids), chunk):
            await enqueue_send(ctx, notice_id, channel, ids[i : i + chunk], urgent)
        requeued += len(ids)
    for notice_id in found["outboxes"]:
        await ctx["queue"].enqueue("fanout_notice", notice_id=notice_id)
    # Owed agency callbacks whose queued retry was lost (a Redis restart) or whose worker died.
    for callback_id, attempts in found["callbacks"]:
        await ctx["queue"].enqueue(
            "post_agency_callback", job_id=callback_job_id(callback_id, attempts), callback_id=callback_id
        )
    finished = 0
    for notice_id in found["sending"]:
        finished += int(await run_db(finish_if_done, ctx["engine"], notice_id, now(ctx)))
    if ctx["settings"].dingtalk.appkey:  # DingTalk reports nothing itself: ask who got and read its notices
        await ctx["queue"].enqueue("poll_dingtalk", job_id="poll_dingtalk")
    if pulls_receipts(ctx["settings"]):  # late Alibaba SMS reports: ask before they turn `unknown`
        await ctx["queue"].enqueue("pull_receipts", job_id="pull_receipts")
    if found["escalating"]:  # staff notices not read in time go out by SMS
        await ctx["queue"].enqueue("escalate_unread", job_id="escalate_unread")
    # Governance: occurrences of recurring notices, and notices whose sign-off came too late.
    governed = await run_governance_tick(ctx, now(ctx))
    if found["reclaimed"] or requeued:
        log.warning("sweeper: %d reclaimed from dead workers, %d re-enqueued", found["reclaimed"], requeued)
    return {
        "reclaimed": found["reclaimed"],
        "expired": found["expired"],
        "requeued": requeued,
        "fanouts": len(found["outboxes"]),
        "finished": finished,
        "governance": governed,
        "callbacks": len(found["callbacks"]),
    }


def pulls_receipts(settings: Any) -> bool:
    """Whether late Alibaba SMS reports are asked for (receipt_pull.py): configured and not switched off."""
    return bool(
        settings.notices.receipt_pull_before_seconds > 0
        and settings.aliyun_sms.access_key_id
        and "aliyun_sms" in settings.notices.sms_providers
    )


def finish_if_done(engine: Engine, notice_id: str, moment: Any) -> bool:
    """Mark a sending notice completed when none of its deliveries is still open."""
    with engine.begin() as conn:
        outbox_open = conn.execute(
            select(func.count()).select_from(O).where(O.c.notice_id == notice_id, O.c.done_at.is_(None))
        ).scalar_one()
        if outbox_open:
            return False
        # Pending work through the partial index first; then the sent ones still awaiting a receipt.
        pending = exists().where(D.c.notice_id == notice_id, D.c.next_attempt_at.is_not(None))
        if conn.execute(select(pending)).scalar():
            return False
        awaiting = exists().where(D.c.notice_id == notice_id, awaiting_receipt())
        if conn.execute(select(awaiting)).scalar():
            return False
        # An escalating notice stays `sending` (so it can still be cancelled) while an SMS or a call may follow.
        escalates = conn.execute(select(N.c.escalate_after_seconds).where(N.c.id == notice_id)).scalar()
        if escalates is not None and escalation_owed(conn, notice_id, moment):
            return False
        left = change_status(
            conn,
            notice_id,
            "completed",
            Actor.system("sweeper"),
            only_from=("sending",),
            values={"completed_at": moment},
            moment=moment,
        )
    return left is not None


@job
async def finish_notice(ctx: dict[str, Any], notice_id: str) -> bool:
    """Complete the notice if every delivery is final (queued after sends and receipts)."""
    return await run_db(finish_if_done, ctx["engine"], notice_id, now(ctx))
