"""Provider status reports: match by our reference, move deliveries on, ignore unknowns and duplicates.

A batch of reports costs a handful of statements whatever its size: one lookup by reference, one
by provider id / recipient for reports that carry no reference (WeChat), and one conditional
UPDATE per outcome. The UPDATE itself checks the status it may move from, so a worker recording
the send at the same moment can never make a report go missing or count twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from channels.base import Receipt
from govconnect.clock import utcnow
from govconnect.notices.pipeline_models import Delivery
from govconnect.reports import pipeline_hooks as rollup_hooks
from govconnect.reports.pipeline_hooks import ROLLUP_RETURNING
from govconnect.reports.rollup import rollup_batch

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
# A delivered receipt wins over a pending retry (the provider did take an attempt we thought lost).
DELIVERED_FROM = ("queued", "sending", "sent", "unknown")
FAILED_FROM = ("sending", "sent", "unknown")
# Before our own record of the send lands, the report can only be matched by address: the one
# attempted delivery to it that has no provider id yet.
UNCONFIRMED = ("sending", "queued")
CHUNK = 500


@dataclass
class ReceiptOutcome:
    """What a batch of receipts did."""

    updated: int = 0
    duplicates: int = 0
    unknown: int = 0
    changed: list[str] = field(default_factory=list)
    notices: set[str] = field(default_factory=set)


def _member(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    """`column IN values`; on PostgreSQL `column = ANY(:array)`, one statement text whatever the count.

    An IN list of a different length is a new statement for SQLAlchemy, psycopg and PostgreSQL
    to compile, convert and plan, and receipt batches come in every size.
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(list(values))


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _reference(receipt: Receipt) -> str:
    ref = (receipt.reference or "").strip()
    return ref if ref and len(ref) <= 32 else ""


def _by_reference(conn: Connection, receipts: Sequence[Receipt]) -> set[str]:
    refs = sorted({r for r in map(_reference, receipts) if r})
    found: set[str] = set()
    for part in _chunks(refs):
        found.update(row[0] for row in conn.execute(select(D.c.id).where(_member(conn, D.c.id, part))))
    return found


def _by_provider_id(conn: Connection, pending: Sequence[tuple[int, Receipt]]) -> dict[int, str]:
    """Delivery ids, by the given index, for reports without a usable reference, in one consistent read.

    One statement sees both the recorded provider id and the unconfirmed attempt, so a worker
    committing its record between two lookups cannot hide the delivery from both.
    """
    wanted = [(i, r) for i, r in pending if r.provider_id or r.recipient]
    found: dict[str, Any] = {}  # by delivery id: a row matching in several chunks is one row
    # Each chunk of reports is one statement holding both conditions for each of its reports.
    for part in _chunks(wanted):
        pids = sorted({r.provider_id[:64] for _, r in part if r.provider_id})
        recipients = sorted({r.recipient for _, r in part if r.recipient})
        conditions = []
        if pids:
            conditions.append(_member(conn, D.c.provider_id, pids))
        if recipients:
            conditions.append(
                and_(
                    _member(conn, D.c.recipient, recipients),
                    D.c.provider_id.is_(None),
                    D.c.status.in_(UNCONFIRMED),
                    D.c.attempts > 0,
                )
            )
        query = select(D.c.id, D.c.provider_id, D.c.recipient).where(or_(*conditions))
        found.update((row[0], row) for row in conn.execute(query).all())
    by_pid: dict[str, list[Any]] = defaultdict(list)
    unconfirmed: dict[str, list[str]] = defaultdict(list)
    for delivery_id, pid, recipient in found.values():
        if pid is None:
            unconfirmed[recipient].append(delivery_id)
        else:
            by_pid[pid].append((delivery_id, recipient))
    matched: dict[int, str] = {}
    for index, receipt in wanted:
        pid = (receipt.provider_id or "")[:64]
        candidates = [d for d, r in by_pid.get(pid, ()) if not receipt.recipient or r == receipt.recipient]
        if len(candidates) != 1 and receipt.recipient:
            # One provider request may carry several recipients (SendSms to many numbers), and a
            # report can overtake our record of the send: the one unconfirmed attempt to the address.
            candidates = unconfirmed.get(receipt.recipient, [])
        if len(candidates) == 1:
            matched[index] = candidates[0]
    return matched


def _outcome_values(receipt: Receipt, moment: datetime) -> tuple[tuple[Any, ...], dict[str, Any]]:
    values: dict[str, Any] = {"status": "delivered" if receipt.delivered else "failed"}
    if receipt.delivered:
        values.update(error_code=None, error_reason=None)  # an earlier attempt's error no longer applies
    else:
        values.update(error_code=(receipt.code or "failed")[:64], error_reason=(receipt.reason or "")[:200])
    return tuple(sorted(values.items())), values


def apply_receipts(engine: Engine, receipts: Sequence[Receipt]) -> ReceiptOutcome:
    """Apply status reports; unknown references and repeats change nothing but are counted."""
    outcome = ReceiptOutcome()
    if not receipts:
        return outcome
    moment = utcnow()
    with engine.begin() as conn, rollup_batch(conn):
        known = _by_reference(conn, receipts)
        targets: list[str | None] = [ref if (ref := _reference(r)) in known else None for r in receipts]
        by_pid = _by_provider_id(conn, [(i, r) for i, r in enumerate(receipts) if targets[i] is None])
        for i, delivery in by_pid.items():
            targets[i] = delivery
        # The first report for a delivery in this batch decides; later ones are repeats.
        groups: dict[tuple[Any, ...], tuple[dict[str, Any], list[str]]] = {}
        repeats: list[str] = []
        seen: set[str] = set()
        for receipt, delivery_id in zip(receipts, targets, strict=True):
            if delivery_id is None:
                outcome.unknown += 1
                continue
            if delivery_id in seen:
                repeats.append(delivery_id)
                continue
            seen.add(delivery_id)
            key, values = _outcome_values(receipt, moment)
            groups.setdefault(key, (values, []))[1].append(delivery_id)
        for values, ids in groups.values():
            delivered = values["status"] == "delivered"
            allowed = DELIVERED_FROM if delivered else FAILED_FROM
            for part in _chunks(ids):
                done: set[str] = set()
                # Pending or sent first, then the late ones the sweeper had given up on: in this
                # order a sweep committing in between cannot hide a delivery from both statements.
                for from_statuses, late in (([s for s in allowed if s != "unknown"], False), (["unknown"], True)):
                    changed = conn.execute(
                        update(D)
                        .where(_member(conn, D.c.id, part), D.c.status.in_(from_statuses))
                        .values(
                            **values,
                            receipts=D.c.receipts + 1,
                            final_at=moment,
                            next_attempt_at=None,
                            updated_at=moment,
                        )
                        .returning(D.c.id, *ROLLUP_RETURNING)
                    ).all()
                    done.update(str(row[0]) for row in changed)
                    outcome.notices.update(str(row[1]) for row in changed)
                    rollup_hooks.count_receipts(
                        conn, [row[1:] for row in changed], delivered, values.get("error_code") or "", moment, late
                    )
                outcome.changed.extend(done)
                repeats.extend(i for i in part if i not in done)
        outcome.updated = len(outcome.changed)
        outcome.duplicates = len(repeats)
        for part in _chunks(repeats):
            conn.execute(update(D).where(_member(conn, D.c.id, part)).values(receipts=D.c.receipts + 1))
    if outcome.unknown or outcome.duplicates:
        log.info(
            "receipts: %d applied, %d duplicates, %d unknown", outcome.updated, outcome.duplicates, outcome.unknown
        )
    return outcome


class ReceiptsBusy(Exception):
    """More reports are waiting than the database is keeping up with: the provider should push again later."""


class ReceiptBatcher:
    """Group commit for status reports: reports that arrive together share one transaction.

    Providers push reports one HTTP request at a time (WeChat sends one event per message), so
    at volume a transaction per request is most of the database's work. Each caller still waits
    until its reports are committed, so a provider is only told "received" for what is stored.
    """

    def __init__(
        self,
        engine: Engine,
        on_applied: Callable[[ReceiptOutcome], Awaitable[None]] | None = None,
        max_batch: int = 2000,
        max_waiting: int = 20_000,
    ) -> None:
        self.engine = engine
        self.on_applied = on_applied
        self.max_batch = max_batch
        # Beyond this many waiting reports a push is refused at once (503): providers push again
        # later, so memory stays bounded when reports arrive faster than the database applies them
        # (at 1,000,000 reports on a loaded machine the API process grew to 2.8 GB without it).
        self.max_waiting = max_waiting
        self._waiting_reports = 0
        self._waiting: list[tuple[list[Receipt], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def apply(self, receipts: Sequence[Receipt]) -> None:
        """Apply these reports with whatever else is waiting; returns once they are committed."""
        if not receipts:
            return
        if self._waiting_reports and self._waiting_reports + len(receipts) > self.max_waiting:
            raise ReceiptsBusy()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(receipts), future))
        self._waiting_reports += len(receipts)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(future)

    def _take(self) -> list[tuple[list[Receipt], asyncio.Future[None]]]:
        taken, count = 0, 0
        while taken < len(self._waiting) and count < self.max_batch:
            count += len(self._waiting[taken][0])
            taken += 1
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        self._waiting_reports -= count
        return batch

    async def _flush(self) -> None:
        # While one batch is in the database the next one gathers: no timer, no added latency.
        while self._waiting:
            batch = self._take()
            reports = [receipt for receipts, _ in batch for receipt in receipts]
            try:
                outcome = await asyncio.to_thread(apply_receipts, self.engine, reports)
            except Exception as exc:  # noqa: BLE001 - every waiting request answers 5xx; providers retry
                log.exception("applying %d receipts failed", len(reports))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if self.on_applied is not None:
                try:
                    await self.on_applied(outcome)
                except Exception:  # noqa: BLE001 - stored already; the sweeper finishes notices anyway
                    log.exception("after-receipt work failed for %d deliveries", len(outcome.changed))
