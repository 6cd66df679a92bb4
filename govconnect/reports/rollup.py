"""Count pipeline events into the report rollups, inside the transaction that makes the change.

Every hook takes the rows an UPDATE or INSERT ... RETURNING said it changed, so a delivery's
final outcome is counted exactly once however often arq runs a job: a repeated job changes no
row, and a rolled-back transaction takes its counts with it. Delivery counters go to the day
(Beijing time) the delivery was written, so a late receipt corrects the same row its delivery
was counted on (unknown -1, delivered +1); notices go to the day they were accepted.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from govconnect.clock import CHINA_TZ
from govconnect.notices.models import Notice
from govconnect.reports.models import ROLLUP_KEY, TTD_BOUNDS, TTD_COLUMNS, ReportFailure, ReportRollup

R = ReportRollup.__table__  # type: ignore[attr-defined]
F = ReportFailure.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
RollupKey = tuple[int, date, str, str]
_AGENCY_OF_NOTICE: dict[str, int] = {}  # a notice never changes agency: cached per process


def beijing_day(moment: datetime) -> date:
    """The calendar day in Beijing of a (UTC or naive-UTC) moment."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TZ).date()


def ttd_column(seconds: float) -> str:
    """The histogram column a time to deliver falls in."""
    return TTD_COLUMNS[bisect.bisect_left(TTD_BOUNDS, max(0.0, seconds))]


@dataclass
class RollupChanges:
    """Counter increments by rollup key, and failures by key and reason, to be written together."""

    counts: dict[RollupKey, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    failures: dict[tuple[RollupKey, str], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: RollupKey, column: str, amount: int = 1) -> None:
        """Add `amount` to one counter of one rollup row."""
        self.counts[key][column] += amount

    def fail(self, key: RollupKey, reason: str) -> None:
        """Count one failed delivery with its provider code."""
        self.counts[key]["failed"] += 1
        self.failures[(key, (reason or "unknown_error")[:64])] += 1


@dataclass(frozen=True)
class DeliveryRow:
    """What a hook needs of a delivery a statement changed."""

    notice_id: str
    channel: str
    provider: str
    created_at: datetime


def agencies_of(conn: Connection, notice_ids: Iterable[str]) -> dict[str, int]:
    """Agency id per notice id (one query for those not cached yet)."""
    wanted = set(notice_ids)
    missing = sorted(wanted - _AGENCY_OF_NOTICE.keys())
    for i in range(0, len(missing), 500):
        part = missing[i : i + 500]
        for row in conn.execute(select(N.c.id, N.c.agency_id).where(N.c.id.in_(part))):
            _AGENCY_OF_NOTICE[str(row[0])] = int(row[1])
    if len(_AGENCY_OF_NOTICE) > 50_000:
        kept = {k: _AGENCY_OF_NOTICE[k] for k in wanted if k in _AGENCY_OF_NOTICE}
        _AGENCY_OF_NOTICE.clear()
        _AGENCY_OF_NOTICE.update(kept)
    return {k: _AGENCY_OF_NOTICE[k] for k in wanted if k in _AGENCY_OF_NOTICE}


def count_deliveries(
    conn: Connection,
    rows: Sequence[DeliveryRow],
    column: str,
    *,
    reasons: Sequence[str] | None = None,
    amounts: Sequence[int] | None = None,
    ttd_until: Sequence[datetime | None] | None = None,
    correct_unknown: bool = False,
) -> None:
    """Count changed deliveries into `column` (with failure reasons, amounts or times to deliver)."""
    if not rows:
        return
    agencies = agencies_of(conn, {row.notice_id for row in rows})
    changes = RollupChanges()
    for i, row in enumerate(rows):
        agency_id = agencies.get(row.notice_id)
        if agency_id is None:
            continue
        key = (agency_id, beijing_day(row.created_at), row.channel, row.provider or "")
        if reasons is not None:
            changes.fail(key, reasons[i])
        else:
            changes.add(key, column, amounts[i] if amounts is not None else 1)
        if correct_unknown:
            changes.add(key, "unknown", -1)
        until = ttd_until[i] if ttd_until is not None else None
        if until is not None:
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            changes.add(key, ttd_column((until - created).total_seconds()))
    write_changes(conn, changes)


def count_notice(conn: Connection, agency_id: int, created_at: datetime) -> None:
    """Count one accepted notice for its agency and day."""
    changes = RollupChanges()
    changes.add((agency_id, beijing_day(created_at), "", ""), "notices")
    write_changes(conn, changes)


def count_approval(conn: Connection, agency_id: int, decided_at: datetime, turnaround_seconds: float) -> None:
    """Count one approval decision and its turnaround (hook for the approval workflow)."""
    changes = RollupChanges()
    key = (agency_id, beijing_day(decided_at), "", "")
    changes.add(key, "approvals")
    changes.add(key, "approval_seconds", max(0, round(turnaround_seconds)))
    write_changes(conn, changes)


@contextmanager
def rollup_batch(conn: Connection) -> Iterator[None]:
    """Gather the counts of everything inside and write them once, sorted, when the block succeeds.

    A transaction that counts in several steps (a receipt batch: per outcome and chunk) would
    otherwise lock rollup rows in an order of its own, and two such transactions could deadlock.
    """
    if "rollup_batch" in conn.info:
        yield
        return
    changes = conn.info["rollup_batch"] = RollupChanges()
    try:
        yield
    finally:
        conn.info.pop("rollup_batch", None)
    write_changes(conn, changes)


def _merge(into: RollupChanges, changes: RollupChanges) -> None:
    for key, counters in changes.counts.items():
        for column, amount in counters.items():
            into.add(key, column, amount)
    for key_reason, amount in changes.failures.items():
        into.failures[key_reason] += amount


def _insert(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def write_changes(conn: Connection, changes: RollupChanges) -> None:
    """Upsert the increments, rows in key order (concurrent writers lock rows in the same order).

    Inside `rollup_batch` they are gathered and written when the batch ends.
    """
    batch = conn.info.get("rollup_batch")
    if batch is not None:
        _merge(batch, changes)
        return
    for key in sorted(changes.counts):
        increments = {column: amount for column, amount in changes.counts[key].items() if amount}
        if not increments:
            continue
        stmt = _insert(conn, R).values({**dict(zip(ROLLUP_KEY, key, strict=True)), **increments})
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(ROLLUP_KEY),
                set_={column: R.c[column] + stmt.excluded[column] for column in increments},
            )
        )
    for (key, reason), amount in sorted(changes.failures.items()):
        stmt = _insert(conn, F).values({**dict(zip(ROLLUP_KEY, key, strict=True)), "reason": reason, "count": amount})
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[*ROLLUP_KEY, "reason"], set_={"count": F.c["count"] + stmt.excluded["count"]}
            )
        )
