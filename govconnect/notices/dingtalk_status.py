"""DingTalk work notices report nothing by themselves: the gateway asks, per task, who got and read them.

An accepted `dingtalk` delivery is `sent` with DingTalk's task id as provider id. The sweeper
queues `poll_dingtalk` (at most every DINGTALK__STATUS_POLL_SECONDS): for each task with people
still `sent` it asks `getsendprogress`, and once DingTalk has finished, `getsendresult`; people
listed read or unread become `delivered`, the failed, forbidden (daily cap, same content twice)
and invalid ones `failed` with DingTalk's code, through the same receipt path as pushed reports.
Tasks whose people are delivered but not all read are asked `getsendresult` again until
DINGTALK__READ_WINDOW_HOURS (DingTalk answers for 24 hours): a person in the read list gets
`read_at` on their delivery. Reading is a fact beside the status (migration 0017 says why).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from channels.base import ProviderError, Receipt
from channels.dingtalk import Dingtalk
from govconnect.jobs import job, process_state
from govconnect.notices.agency_callbacks import emit_status_events
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import now, run_db
from govconnect.notices.providers import get_providers
from govconnect.notices.receipts import apply_receipts
from govconnect.notices.sending import enqueue_finish

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
POLL_LIMIT = 20_000  # deliveries looked at in one poll


@dataclass
class OpenTask:
    """One DingTalk task with people still to hear about: id, status and read time by user id."""

    task_id: str
    people: dict[str, tuple[str, str, datetime | None]] = field(default_factory=dict)  # user -> (id, status, read)

    @property
    def settled(self) -> bool:
        """Every person already has a final answer (only reading is still followed)."""
        return all(status != "sent" for _, status, _ in self.people.values())


def open_tasks(engine: Engine, moment: datetime, window: timedelta) -> list[OpenTask]:
    """Tasks sent within `window` with a delivery still `sent`, or `delivered` and not yet read."""
    since = moment - window
    recent = select(N.c.id).where(or_(N.c.status == "sending", N.c.completed_at > since))
    with engine.connect() as conn:
        rows: Any = conn.execute(
            select(D.c.id, D.c.provider_id, D.c.recipient, D.c.status, D.c.read_at)
            .where(
                D.c.notice_id.in_(recent),
                D.c.channel == "dingtalk",
                D.c.provider_id.is_not(None),
                D.c.sent_at > since,
                or_(D.c.status == "sent", and_(D.c.status == "delivered", D.c.read_at.is_(None))),
            )
            .limit(POLL_LIMIT)
        ).all()
    tasks: dict[str, OpenTask] = {}
    for delivery_id, task_id, user, status, read_at in rows:
        tasks.setdefault(str(task_id), OpenTask(str(task_id))).people[str(user)] = (
            str(delivery_id),
            str(status),
            read_at,
        )
    return list(tasks.values())


def mark_read(engine: Engine, delivery_ids: list[str], moment: datetime) -> int:
    """Set `read_at` on delivered deliveries not yet marked; how many changed."""
    if not delivery_ids:
        return 0
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(D)
                .where(D.c.id.in_(delivery_ids), D.c.status == "delivered", D.c.read_at.is_(None))
                .values(read_at=moment, updated_at=moment)
            ).rowcount
        )


@dataclass
class PollOutcome:
    """What one poll learnt."""

    tasks: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # delivery ids read
    errors: int = 0


async def poll_tasks(adapter: Dingtalk, tasks: list[OpenTask]) -> PollOutcome:
    """Ask DingTalk about each task: progress while people are unsettled, then the send result."""
    outcome = PollOutcome()
    for task in tasks:
        try:
            if not task.settled and not (await adapter.send_progress(task.task_id)).done:
                continue
            result = await adapter.send_result(task.task_id)
        except ProviderError as exc:
            outcome.errors += 1
            log.warning("dingtalk task %s: status not read (%s)", task.task_id, exc.code)
            continue
        outcome.tasks += 1
        for receipt in result.receipts(task.task_id):
            person = task.people.get(receipt.recipient or "")
            if person is None:
                continue
            delivery_id, status, read_at = person
            if status == "sent":  # our id as the reference: the lookup is by primary key
                outcome.receipts.append(
                    Receipt(
                        delivery_id, task.task_id, receipt.delivered, receipt.code, receipt.reason, provider="dingtalk"
                    )
                )
            if receipt.recipient in result.read and read_at is None:
                outcome.read.append(delivery_id)
    return outcome


@job
async def poll_dingtalk(ctx: dict[str, Any]) -> dict[str, int]:
    """Learn from DingTalk who got and who read recent work notices (queued by the sweeper)."""
    settings = ctx["settings"]
    state = process_state(ctx)
    if time.monotonic() - state.get("dingtalk_polled", float("-inf")) < settings.dingtalk.status_poll_seconds:
        return {"skipped": 1}
    state["dingtalk_polled"] = time.monotonic()
    adapter = get_providers(ctx).adapters.get("dingtalk")
    if not isinstance(adapter, Dingtalk):
        return {"skipped": 1}
    engine: Engine = ctx["engine"]
    window = timedelta(hours=settings.dingtalk.read_window_hours)
    tasks = await run_db(open_tasks, engine, now(ctx), window)
    if not tasks:
        return {"tasks": 0}
    found = await poll_tasks(adapter, tasks)
    applied = await run_db(apply_receipts, engine, found.receipts)
    read = await run_db(mark_read, engine, found.read, now(ctx))
    await emit_status_events(ctx, applied.changed)
    for notice_id in applied.notices:
        await enqueue_finish(ctx, notice_id)
    by_status: dict[str, int] = defaultdict(int)
    for receipt in found.receipts:
        by_status["delivered" if receipt.delivered else "failed"] += 1
    return {"tasks": found.tasks, "errors": found.errors, "read": read, **by_status}
