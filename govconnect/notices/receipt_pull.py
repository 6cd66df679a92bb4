"""Receipt pulling: before an SMS without a report becomes `unknown`, ask Alibaba what became of it.

A pushed SmsReport can be lost (the push retried three times and failed, or our endpoint was
down for longer). The sweeper marks a `sent` delivery `unknown` once NOTICES__RECEIPT_TIMEOUT_SECONDS
pass without a report; in the last NOTICES__RECEIPT_PULL_BEFORE_SECONDS of that wait it queues
`pull_receipts`, which asks `QuerySendDetails` (PhoneNumber, SendDate yyyyMMdd in Beijing time,
BizId, PageSize 50, CurrentPage ...) for each such Alibaba SMS and settles those Alibaba knows
(SendStatus 3 delivered, 2 failed with its ErrCode) through the same path as pushed reports.
Messages Alibaba still waits on are left for the sweeper. The job runs at most every third of
the pull window, so each delivery is asked about two or three times, and every page it asks for
takes a token from the project's rate limiter (`aliyun_sms_query` in NOTICES__RATE_PER_SECOND).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from channels.aliyun_sms import AliyunSms
from channels.base import CHINA_TZ, ProviderError, Receipt
from govconnect.jobs import job, process_state
from govconnect.notices.agency_callbacks import emit_status_events
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import now, run_db
from govconnect.notices.providers import get_providers, get_rate_limiter
from govconnect.notices.receipts import apply_receipts
from govconnect.notices.sending import enqueue_finish
from govconnect.notices.sweeper import _expiry_candidates, awaiting_receipt

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
PULL_LIMIT = 5000  # deliveries asked about in one run; the next run takes the rest
QUERY_RATE_KEY = "aliyun_sms_query"


@dataclass(frozen=True)
class Unreported:
    """A sent Alibaba SMS still waiting for its report."""

    id: str
    recipient: str
    biz_id: str
    sent_at: datetime


def pull_window(settings: Any, moment: datetime) -> tuple[datetime, datetime] | None:
    """(expires before, ask when sent before): sent_at between them is asked about; None when disabled."""
    notices = settings.notices
    if notices.receipt_pull_before_seconds <= 0:
        return None
    expired = moment - timedelta(seconds=notices.receipt_timeout_seconds)
    due = expired + timedelta(seconds=notices.receipt_pull_before_seconds)
    return expired, due


def unreported(engine: Engine, settings: Any, moment: datetime) -> list[Unreported]:
    """Alibaba SMS in the pull window: sent, no report, not yet given up on, oldest first."""
    window = pull_window(settings, moment)
    if window is None:
        return []
    expired, due = window
    with engine.connect() as conn:
        rows: Any = conn.execute(
            select(D.c.id, D.c.recipient, D.c.provider_id, D.c.sent_at)
            .where(
                D.c.notice_id.in_(_expiry_candidates(settings, moment, due)),
                awaiting_receipt(),
                D.c.provider == AliyunSms.provider,
                D.c.provider_id.is_not(None),
                D.c.sent_at < due,
                D.c.sent_at >= expired,
            )
            .order_by(D.c.sent_at)
            .limit(PULL_LIMIT)
        ).all()
    return [Unreported(str(i), str(r), str(b), s) for i, r, b, s in rows]


def send_date(sent_at: datetime) -> str:
    """The Beijing day Alibaba filed the message under (`yyyyMMdd`)."""
    return sent_at.astimezone(CHINA_TZ).strftime("%Y%m%d")


async def ask(adapter: AliyunSms, items: list[Unreported], acquire: Any) -> tuple[list[Receipt], Counter[str]]:
    """QuerySendDetails for each delivery; receipts for the settled ones and a tally of what happened."""
    receipts: list[Receipt] = []
    tally: Counter[str] = Counter()
    for item in items:
        try:
            details = await adapter.query_send_details(
                item.recipient[-11:], send_date(item.sent_at), item.biz_id, acquire=acquire
            )
        except ProviderError as exc:
            tally["errors"] += 1
            log.warning("QuerySendDetails for delivery %s failed: %s", item.id, exc.code)
            if exc.code in ("rate_limited", "http_429") or exc.code.startswith("Throttling"):
                break  # throttled: the rest wait for the next run
            continue
        mine = [d for d in details if d.phone.endswith(item.recipient[-11:])]
        receipt = next((r for d in mine if (r := d.receipt(item.id, item.biz_id)) is not None), None)
        if receipt is None:
            tally["waiting" if mine else "not_found"] += 1
            continue
        receipts.append(receipt)
        tally["delivered" if receipt.delivered else "failed"] += 1
    return receipts, tally


@job
async def pull_receipts(ctx: dict[str, Any], force: bool = False) -> dict[str, int]:
    """Ask Alibaba about SMS whose report is late, before the sweeper gives up on them (queued by the sweeper)."""
    settings = ctx["settings"]
    window = settings.notices.receipt_pull_before_seconds
    state = process_state(ctx)
    if window <= 0:
        return {"skipped": 1}
    if not force and time.monotonic() - state.get("receipts_pulled", float("-inf")) < window / 3:
        return {"skipped": 1}
    adapter = get_providers(ctx).adapters.get(AliyunSms.provider)
    if not isinstance(adapter, AliyunSms):
        return {"skipped": 1}
    state["receipts_pulled"] = time.monotonic()
    engine: Engine = ctx["engine"]
    items = await run_db(unreported, engine, settings, now(ctx))
    if not items:
        return {"asked": 0}
    limiter = get_rate_limiter(ctx)

    async def acquire() -> bool:
        return await limiter.acquire(QUERY_RATE_KEY, 1)

    receipts, tally = await ask(adapter, items, acquire)
    applied = await run_db(apply_receipts, engine, receipts)
    await emit_status_events(ctx, applied.changed)
    for notice_id in applied.notices:
        await enqueue_finish(ctx, notice_id)
    log.info("pulled receipts: %d asked, %s", len(items), dict(tally))
    return {"asked": len(items), "settled": applied.updated, **tally}
