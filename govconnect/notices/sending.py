"""The send job: claim queued deliveries atomically, rate-limit, hand them to the provider, record outcomes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter as TallyCounter
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import bindparam, case, func, or_, select, text, update
from sqlalchemy.engine import Connection, Engine

from channels.base import MessageKind, OutboundMessage, Outcome, SendResult
from channels.catalogue import NO_RECEIPT_CHANNELS
from govconnect.citizens.subscriptions import unsubscribe_url
from govconnect.jobs import job, process_state
from govconnect.message_templates.outbound import build_message, load_profile
from govconnect.notices.agency_callbacks import emit_status_events
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from govconnect.notices.policy import backoff_seconds, now, quiet_until, run_db
from govconnect.notices.providers import get_providers, get_rate_limiter
from govconnect.notices.replies import attendance_url
from govconnect.notices.reply_models import ATTENDANCE
from govconnect.operations.health import CircuitState, get_health
from govconnect.reports import pipeline_hooks as rollup_hooks
from govconnect.reports.pipeline_hooks import ROLLUP_RETURNING
from govconnect.reports.rollup import rollup_batch
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]

DELIVERY_OUTCOMES = Counter(
    "govconnect_delivery_attempts_total",
    "Delivery attempts by channel, provider and outcome",
    ["channel", "provider", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "govconnect_delivery_send_seconds",
    "Seconds from a delivery's creation to the provider accepting it",
    ["channel", "provider"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
CLOSED_CIRCUIT = CircuitState("closed")
URGENT_HEAD_START = -600.0  # urgent work is scored ten minutes early in arq's queue, so it runs first


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker now owns (status `sending`)."""

    id: str
    recipient: str
    params: dict[str, Any]
    provider: str
    attempts: int
    deadline_at: datetime | None
    created_at: datetime
    subscriber_id: int | None = None


def is_timeout(result: SendResult) -> bool:
    """True when the attempt ended without an answer, so the provider may have accepted it."""
    return "timeout" in (result.code or "").lower()


async def enqueue_send(
    ctx: dict[str, Any], notice_id: str, channel: str, ids: Sequence[str], urgent: bool, delay: float = 0.0
) -> None:
    """Queue a send job for these deliveries (urgent ones ahead of normal ones)."""
    if not ids:
        return
    defer = delay if delay > 0 else (URGENT_HEAD_START if urgent else None)
    await ctx["queue"].enqueue("send_deliveries", notice_id=notice_id, channel=channel, ids=list(ids), defer_by=defer)


_FINISH_ENQUEUED: dict[str, int] = {}


async def enqueue_finish(ctx: dict[str, Any], notice_id: str) -> None:
    """Queue a completion check for the notice (at most one per notice every few seconds)."""
    bucket = int(time.time() // 5)
    if _FINISH_ENQUEUED.get(notice_id) == bucket:
        return  # already queued from this process in this window (receipts arrive by the thousand)
    _FINISH_ENQUEUED[notice_id] = bucket
    if len(_FINISH_ENQUEUED) > 10_000:
        _FINISH_ENQUEUED.clear()
    await ctx["queue"].enqueue(
        "finish_notice", job_id=f"finish:{notice_id}:{bucket}", notice_id=notice_id, defer_by=2.0
    )


def claim_statement(ids: Sequence[str], moment: datetime) -> Any:
    """Move due `queued` deliveries to `sending`, returning what was claimed.

    Only the primary key can serve it (`status` is in no index), so a stale planner estimate
    cannot turn a claim of one job's deliveries into a scan of every queued one; the update is HOT.
    """
    return (
        update(D)
        .where(
            D.c.id.in_(list(ids)),
            D.c.status == "queued",
            or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= moment + timedelta(seconds=1)),
        )
        .values(status="sending", claimed_at=moment, attempts=D.c.attempts + 1, held_reason=None, updated_at=moment)
        .returning(
            D.c.id,
            D.c.recipient,
            D.c.params,
            D.c.provider,
            D.c.attempts,
            D.c.deadline_at,
            D.c.created_at,
            D.c.subscriber_id,
        )
    )


def _claim(engine: Engine, ids: Sequence[str], moment: datetime) -> list[Claimed]:
    """Claim due `queued` deliveries; a delivery another worker claimed is skipped."""
    with engine.begin() as conn:
        rows: Any = conn.execute(claim_statement(ids, moment)).all()
    return [Claimed(*row) for row in rows]


def _cancel_queued(engine: Engine, ids: Sequence[str], moment: datetime) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            update(D)
            .where(D.c.id.in_(list(ids)), D.c.status == "queued")
            .values(status="cancelled", final_at=moment, next_attempt_at=None, held_reason=None, updated_at=moment)
            .returning(*ROLLUP_RETURNING)
        ).all()
        rollup_hooks.count_cancelled(conn, changed)


def _defer_for_quiet_hours(engine: Engine, ids: Sequence[str], until: datetime) -> None:
    """Hold queued deliveries until quiet hours end, saying so (progress and /metrics count `held_reason`)."""
    with engine.begin() as conn:
        conn.execute(
            update(D)
            .where(D.c.id.in_(list(ids)), D.c.status == "queued")
            .values(next_attempt_at=until, held_reason="quiet_hours")
        )


def _load_notice(engine: Engine, notice_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(N.c.id, N.c.title, N.c.body, N.c.urgency, N.c.status, N.c.agency_id, N.c.replies).where(
                N.c.id == notice_id
            )
        ).first()


def weighted_order(weights: dict[str, int], providers: list[str], delivery_id: str) -> list[str]:
    """`providers` with the one this delivery's id draws by weight first (the rest keep their order).

    The draw hashes the id, so it is the same on every attempt and every worker: a delivery's
    retries go to the same provider until failover moves them, and over many deliveries each
    provider's share is its weight's share of the total.
    """
    shares = [(p, max(0, weights.get(p, 0))) for p in providers]
    total = sum(weight for _, weight in shares)
    if total <= 0 or len(providers) < 2:
        return providers
    digest = hashlib.blake2b(delivery_id.encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") % total
    for provider, weight in shares:
        if point < weight:
            return [provider, *(p for p in providers if p != provider)]
        point -= weight
    return providers  # not reached: the points cover exactly the total


def provider_order(settings: Settings, providers: list[str], claimed: Claimed, urgent: bool = False) -> list[str]:
    """The providers a delivery tries, first choice first: by weight for normal SMS, else by preference."""
    if urgent or not settings.notices.sms_weights:
        return providers
    return weighted_order(settings.notices.sms_weights, providers, claimed.id)


def choose_provider(settings: Settings, providers: list[str], claimed: Claimed, urgent: bool = False) -> str:
    """The delivery's provider; SMS moves on to the next provider every `failover_after` failed attempts."""
    if not providers:
        return claimed.provider
    order = provider_order(settings, providers, claimed, urgent)
    failed_attempts = claimed.attempts - 1
    # Take turns: `failover_after` attempts on the preferred provider, as many on the next, then back.
    index = (failed_attempts // max(1, settings.notices.failover_after)) % len(order)
    return order[index]


def assign_providers(
    settings: Settings,
    available: list[str],
    claimed: list[Claimed],
    circuits: dict[str, CircuitState],
    urgent: bool = False,
) -> tuple[dict[str, list[Claimed]], list[tuple[Claimed, str, float]]]:
    """Deliveries per provider, skipping providers whose circuit is open (SMS fails over to the other).

    A provider in `probe` gets one message; what cannot go anywhere now is held with the wait.
    """
    by_provider: dict[str, list[Claimed]] = defaultdict(list)
    held: list[tuple[Claimed, str, float]] = []
    for item in claimed:
        order = provider_order(settings, available, item, urgent)
        preferred = choose_provider(settings, available, item, urgent)
        start = order.index(preferred) if preferred in order else 0
        for provider in [*order[start:], *order[:start]] or [preferred]:
            circuit = circuits.get(provider, CLOSED_CIRCUIT)
            if circuit.state == "closed" or (circuit.state == "probe" and not by_provider[provider]):
                by_provider[provider].append(item)
                break
        else:
            wait = min((circuits[p].retry_after for p in available if p in circuits), default=1.0)
            held.append((item, preferred, max(1.0, wait)))
    return {p: items for p, items in by_provider.items() if items}, held


@job
async def send_deliveries(ctx: dict[str, Any], notice_id: str, channel: str, ids: list[str]) -> dict[str, int]:
    """Send these deliveries of one notice on one channel; safe to run twice (claims are atomic)."""
    engine: Engine = ctx["engine"]
    settings: Settings = ctx["settings"]
    moment = now(ctx)
    notice = await run_db(_load_notice, engine, notice_id)
    if notice is None:
        return {"claimed": 0}
    if notice.status in ("cancelled", "retracted"):
        # Deliveries a fan-out wrote after the cancel (or retraction) are cancelled here, not sent.
        await run_db(_cancel_queued, engine, ids, moment)
        return {"claimed": 0}
    until = quiet_until(moment, channel, notice.urgency)
    if until is not None:
        await run_db(_defer_for_quiet_hours, engine, ids, until)
        await enqueue_send(ctx, notice_id, channel, ids, False, delay=(until - moment).total_seconds())
        log.info("notice %s %s: %d deliveries deferred for quiet hours", notice_id, channel, len(ids))
        return {"claimed": 0, "deferred": len(ids)}
    claimed = await run_db(_claim, engine, ids, moment)
    if not claimed:
        return {"claimed": 0}
    providers = get_providers(ctx)
    available = providers.providers(channel)
    health = get_health(ctx)
    circuits = {p: await health.circuit(p) for p in available}
    by_provider, held = assign_providers(settings, available, claimed, circuits, notice.urgency == "urgent")
    results: list[tuple[Claimed, str, SendResult]] = [
        (item, provider, SendResult.retryable(item.id, "circuit_open", "provider paused", retry_after=wait))
        for item, provider, wait in held
    ]
    for provider, items in by_provider.items():
        if provider not in providers.adapters:
            for item in items:
                results.append(
                    (item, provider, SendResult.permanent(item.id, "no_provider", f"{channel} not configured"))
                )
            continue
        timing: list[float] = []
        sent = await _send_via(ctx, provider, channel, notice, items, timing)
        await health.record(provider, [result for _, _, result in sent], len(timing), sum(timing))
        results.extend(sent)
    recorded = await run_db(_record, ctx, engine, settings, channel, results)
    for provider_delay, retry_ids in recorded.retry_groups.items():
        await enqueue_send(ctx, notice_id, channel, retry_ids, notice.urgency == "urgent", delay=provider_delay)
    # Failures at send time and WeCom/Weibo sends are final now: tell the agency (receipts do the rest).
    await emit_status_events(ctx, recorded.final_ids)
    await enqueue_finish(ctx, notice_id)
    return recorded.counts()


def _process_semaphore(ctx: dict[str, Any]) -> asyncio.Semaphore:
    """Provider requests in flight for the whole process, whatever the number of concurrent jobs."""
    semaphore = process_state(ctx).get("send_semaphore")
    if semaphore is None:
        semaphore = asyncio.Semaphore(ctx["settings"].notices.send_concurrency)
        process_state(ctx)["send_semaphore"] = semaphore
    return semaphore


async def _send_via(
    ctx: dict[str, Any], provider: str, channel: str, notice: Any, items: list[Claimed], timing: list[float]
) -> list[tuple[Claimed, str, SendResult]]:
    """Send through one provider in batches; each provider call's duration is appended to `timing`."""
    adapter = get_providers(ctx).adapter(provider)
    limiter = get_rate_limiter(ctx)
    settings: Settings = ctx["settings"]
    kind = MessageKind.EMERGENCY if notice.urgency == "urgent" else MessageKind.SUBSCRIPTION
    if any(item.params.get("_staff") for item in items):
        kind = MessageKind.STAFF
    profile = await run_db(load_profile, ctx["engine"], notice.id, notice.agency_id, channel)
    base = settings.public_base_url.rstrip("/")
    secret = settings.secret_key.get_secret_value()
    asks_attendance = notice.replies == ATTENDANCE and channel in ("dingtalk", "wecom")
    messages: dict[str, OutboundMessage] = {
        item.id: build_message(
            item.id,
            item.recipient,
            channel,
            notice,
            item.params,
            profile,
            kind,
            # A meeting notice's WeCom/DingTalk message links to the person's own 回执 page (参加 / 不参加).
            attendance_url(base, secret, item.id) if asks_attendance else f"{base}/m/notices/{notice.id}",
            # Each SMS to a subscriber carries its own signed link to manage or leave.
            # (Normal notices only: emergency and staff SMS stay short and carry no opt-out hint either.)
            unsubscribe_url(base, secret, item.subscriber_id)
            if item.subscriber_id and channel == "sms" and kind is MessageKind.SUBSCRIPTION
            else None,
        )
        for item in items
    }
    batch_size = max(1, adapter.max_batch)
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    semaphore = _process_semaphore(ctx)
    # Take the whole job's share of the provider's rate at once when it fits in one second's
    # allowance: a WeChat job of 100 messages is then one Redis call, not one per message.
    upfront = limiter.fits(provider, len(items))
    if upfront and not await limiter.acquire(provider, len(items)):
        return [(c, provider, SendResult.retryable(c.id, "rate_limited", "local rate limit")) for c in items]

    async def send_chunk(chunk: list[Claimed]) -> list[tuple[Claimed, str, SendResult]]:
        async with semaphore:
            if not upfront and not await limiter.acquire(provider, len(chunk)):
                return [(c, provider, SendResult.retryable(c.id, "rate_limited", "local rate limit")) for c in chunk]
            started = time.perf_counter()
            try:
                outcome = await adapter.send([messages[c.id] for c in chunk])
            except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the claim
                log.exception("adapter %s raised on %d messages", provider, len(chunk))
                outcome = [SendResult.retryable(c.id, "adapter_error", type(exc).__name__) for c in chunk]
            timing.append(time.perf_counter() - started)
            by_ref = {r.reference: r for r in outcome}
            return [
                (c, provider, by_ref.get(c.id) or SendResult.retryable(c.id, "no_result", "adapter gave no result"))
                for c in chunk
            ]

    gathered = await asyncio.gather(*(send_chunk(chunk) for chunk in chunks))
    return [entry for part in gathered for entry in part]


@dataclass(frozen=True)
class Recorded:
    """What `_record` wrote for one batch: counts, retries grouped by delay, deliveries now final."""

    claimed: int
    accepted: int
    retry: int
    failed: int
    retry_groups: dict[float, list[str]]
    final_ids: list[str]

    def counts(self) -> dict[str, int]:
        """The job's result."""
        return {"claimed": self.claimed, "accepted": self.accepted, "retry": self.retry, "failed": self.failed}


def _record(
    ctx: dict[str, Any],
    engine: Engine,
    settings: Settings,
    channel: str,
    results: list[tuple[Claimed, str, SendResult]],
) -> Recorded:
    """Write outcomes; only deliveries still `sending` change status (a receipt may have come first)."""
    moment = now(ctx)
    accepted: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    retry_groups: dict[float, list[str]] = defaultdict(list)
    final_sent = channel in NO_RECEIPT_CHANNELS
    outcomes: TallyCounter[tuple[str, str]] = TallyCounter()
    for claimed, provider, result in results:
        outcomes[(provider, result.outcome.value)] += 1
        if result.outcome is Outcome.ACCEPTED:
            DELIVERY_LATENCY.labels(channel, provider).observe(max(0.0, (moment - claimed.created_at).total_seconds()))
            accepted.append(
                {
                    "b_id": claimed.id,
                    "b_provider": provider,
                    "b_pid": (result.provider_id or "")[:64] or None,
                    "b_parts": max(1, result.parts),
                    "b_final": moment if final_sent else None,
                }
            )
            continue
        if result.outcome is Outcome.RETRYABLE:
            delay = backoff_seconds(
                claimed.attempts,
                settings.notices.retry_base_seconds,
                settings.notices.retry_max_seconds,
                result.retry_after,
            )
            deadline = claimed.deadline_at or moment + timedelta(seconds=settings.notices.deadline_seconds)
            if moment + timedelta(seconds=delay) <= deadline:
                retry.append(
                    {
                        "b_id": claimed.id,
                        "b_provider": provider,
                        "b_next": moment + timedelta(seconds=delay),
                        "b_code": (result.code or "")[:64],
                        "b_reason": (result.reason or "")[:200],
                        "b_uncertain": is_timeout(result),
                    }
                )
                retry_groups[round(delay, 1)].append(claimed.id)
                continue
            result = SendResult.permanent(claimed.id, "deadline_exceeded", result.code or "")
        failed.append(
            {
                "b_id": claimed.id,
                "b_provider": provider,
                "b_code": (result.code or "")[:64],
                "b_reason": (result.reason or "")[:200],
            }
        )
    for (provider, outcome), count in outcomes.items():
        DELIVERY_OUTCOMES.labels(channel, provider, outcome).inc(count)
    with engine.begin() as conn, rollup_batch(conn):
        if accepted:
            rollup_hooks.count_accepted(conn, _record_accepted(conn, accepted, moment))
        if retry:
            conn.execute(
                update(D)
                .where(D.c.id == bindparam("b_id"), D.c.status == "sending")
                .values(
                    status="queued",
                    provider=bindparam("b_provider"),
                    next_attempt_at=bindparam("b_next"),
                    error_code=bindparam("b_code"),
                    error_reason=bindparam("b_reason"),
                    uncertain=D.c.uncertain | bindparam("b_uncertain"),
                    updated_at=moment,
                ),
                retry,
            )
        if failed:
            _record_failed(conn, failed, moment)
    return Recorded(
        claimed=len(results),
        accepted=len(accepted),
        retry=len(retry),
        failed=len(failed),
        retry_groups=dict(retry_groups),
        final_ids=[f["b_id"] for f in failed] + ([a["b_id"] for a in accepted] if final_sent else []),
    )


# A receipt may have come first: the delivery then keeps the status the receipt gave it.
RECORDABLE = ("sending", "delivered", "failed", "unknown")
# PostgreSQL: the whole batch in one statement taking an array per column (executemany would be
# one statement per delivery, 100,000 of them for a broadcast).
_ACCEPTED_UNNEST = text(
    "UPDATE delivery AS d SET status = CASE WHEN d.status = 'sending' THEN 'sent' ELSE d.status END, "
    "error_code = CASE WHEN d.status = 'sending' THEN NULL ELSE d.error_code END, "
    "error_reason = CASE WHEN d.status = 'sending' THEN NULL ELSE d.error_reason END, "
    "provider = u.provider, provider_id = u.provider_id, parts = u.parts, sent_at = :moment, "
    "final_at = coalesce(d.final_at, u.final_at), next_attempt_at = NULL, updated_at = :moment "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:providers AS varchar[]), CAST(:pids AS varchar[]), "
    "CAST(:parts AS integer[]), CAST(:finals AS timestamptz[])) AS u(id, provider, provider_id, parts, final_at) "
    "WHERE d.id = u.id AND d.status IN ({allowed}) "
    "RETURNING d.notice_id, d.channel, d.provider, d.created_at, d.status, d.parts, d.final_at".format(
        allowed=", ".join(f"'{s}'" for s in RECORDABLE)
    )
)


def _record_accepted(conn: Connection, accepted: list[dict[str, Any]], moment: datetime) -> list[Any]:
    """Mark accepted deliveries `sent` with the provider's id; `next_attempt_at` is cleared (no longer pending).

    The error of an earlier attempt is cleared with it: a sent delivery has no error (a receipt
    that came first and failed it keeps its own).

    Returns the rows it changed (for the report rollups).
    """
    if conn.dialect.name == "postgresql":
        return conn.execute(  # type: ignore[return-value]
            _ACCEPTED_UNNEST,
            {
                "moment": moment,
                "ids": [a["b_id"] for a in accepted],
                "providers": [a["b_provider"] for a in accepted],
                "pids": [a["b_pid"] for a in accepted],
                "parts": [a["b_parts"] for a in accepted],
                "finals": [a["b_final"] for a in accepted],
            },
        ).all()
    # SQLite (embedded mode): one statement per delivery, each telling whether it changed the row.
    statement = (
        update(D)
        .where(D.c.id == bindparam("b_id"), D.c.status.in_(RECORDABLE))
        .values(
            status=case((D.c.status == "sending", "sent"), else_=D.c.status),
            error_code=case((D.c.status == "sending", None), else_=D.c.error_code),
            error_reason=case((D.c.status == "sending", None), else_=D.c.error_reason),
            provider=bindparam("b_provider"),
            provider_id=bindparam("b_pid"),
            parts=bindparam("b_parts"),
            sent_at=moment,
            final_at=func.coalesce(D.c.final_at, bindparam("b_final")),
            next_attempt_at=None,
            updated_at=moment,
        )
        .returning(*ROLLUP_RETURNING, D.c.status, D.c.parts, D.c.final_at)
    )
    return [row for item in accepted for row in conn.execute(statement, item).all()]


def _record_failed(conn: Connection, failed: list[dict[str, Any]], moment: datetime) -> None:
    """Mark failed deliveries still `sending` (with the provider that failed them) and count what changed."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item in failed:
        groups[(item["b_provider"], item["b_code"], item["b_reason"])].append(item["b_id"])
    for (provider, code, reason), ids in groups.items():
        changed = conn.execute(
            update(D)
            .where(D.c.id.in_(ids), D.c.status == "sending")
            .values(
                status="failed",
                provider=provider[:32],
                error_code=code,
                error_reason=reason,
                final_at=moment,
                next_attempt_at=None,
                updated_at=moment,
            )
            .returning(*ROLLUP_RETURNING)
        ).all()
        rollup_hooks.count_failed(conn, changed, [code] * len(changed))
