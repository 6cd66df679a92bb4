"""What the fan-out holds back: numbers on the suppression list and numbers over the daily SMS cap.

Held rows are still written, as final deliveries with status `suppressed` or `capped`, so a
notice's progress shows what was held back and why; they are never queued for sending. Both
checks run in the transaction that inserts the page, so a page is counted once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from govconnect.clock import CHINA_TZ
from govconnect.suppression.models import SmsDayCount
from govconnect.suppression.service import phone_key, suppressed_among

PHONE_CHANNELS = ("sms", "voice")
DAY = SmsDayCount.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HoldPolicy:
    """How one notice's fan-out applies the list and the cap."""

    secret: str
    urgent: bool
    # The agency lets urgent 预警 reach suppressed numbers (agency_sender.urgent_ignores_suppression).
    urgent_ignores_suppression: bool = False
    # At most this many normal SMS a Beijing day to one number, all agencies together; 0: no cap.
    daily_sms_cap: int = 0

    @property
    def applies_suppression(self) -> bool:
        """Normal notices always honour the list; urgent ones unless the agency's policy says otherwise."""
        return not (self.urgent and self.urgent_ignores_suppression)


def _hold(row: dict[str, Any], status: str, moment: datetime) -> None:
    row.update(status=status, error_code=status, next_attempt_at=None, final_at=moment)


def hold_back(conn: Connection, policy: HoldPolicy, rows: list[dict[str, Any]], moment: datetime) -> set[str]:
    """Mark held rows in place (before they are inserted); the ids of the rows held back."""
    phone_rows = [row for row in rows if row["channel"] in PHONE_CHANNELS]
    if not phone_rows:
        return set()
    keys = {id(row): phone_key(policy.secret, row["recipient"]) for row in phone_rows}
    held: set[str] = set()
    if policy.applies_suppression:
        listed = suppressed_among(conn, keys.values())
        for row in phone_rows:
            if keys[id(row)] in listed:
                _hold(row, "suppressed", moment)
                held.add(row["id"])
    if policy.daily_sms_cap > 0 and not policy.urgent:
        sms_rows = [row for row in phone_rows if row["channel"] == "sms" and row["id"] not in held]
        for row in _over_cap(conn, policy.daily_sms_cap, sms_rows, [keys[id(r)] for r in sms_rows], moment):
            _hold(row, "capped", moment)
            held.add(row["id"])
    return held


def _over_cap(
    conn: Connection, cap: int, rows: list[dict[str, Any]], keys: list[str], moment: datetime
) -> list[dict[str, Any]]:
    """Count these SMS against each number's day and return the rows beyond the cap."""
    if not rows:
        return []
    day = moment.astimezone(CHINA_TZ).date().isoformat()
    wanted = Counter(keys)
    totals = _add_counts(conn, day, wanted)
    over: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for row, key in zip(rows, keys, strict=True):
        before = totals[key] - wanted[key]  # what the day held before this page
        seen[key] += 1
        if before + seen[key] > cap:
            over.append(row)
    return over


_PG_ADD = text(
    "INSERT INTO sms_day_count (day, phone_hash, count) "
    "SELECT :day, u.phone_hash, u.n "
    "FROM unnest(CAST(:keys AS varchar[]), CAST(:counts AS integer[])) AS u(phone_hash, n) "
    "ON CONFLICT (day, phone_hash) DO UPDATE SET count = sms_day_count.count + excluded.count "
    "RETURNING phone_hash, count"
)


def _add_counts(conn: Connection, day: str, wanted: Counter[str]) -> dict[str, int]:
    """Add to each number's count for the day atomically; the counts after adding."""
    if conn.dialect.name == "postgresql":
        keys = sorted(wanted)  # a fixed order, so concurrent fan-outs lock rows alike
        result = conn.execute(_PG_ADD, {"day": day, "keys": keys, "counts": [wanted[k] for k in keys]})
        rows: Any = result.all()
        return {str(key): int(count) for key, count in rows}
    totals: dict[str, int] = {}
    for key in sorted(wanted):
        stmt = sqlite_insert(DAY).values(day=day, phone_hash=key, count=wanted[key])
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "phone_hash"], set_={"count": DAY.c.count + stmt.excluded.count}
        )
        conn.execute(stmt)
        count: Any = conn.execute(select(DAY.c.count).where(DAY.c.day == day, DAY.c.phone_hash == key)).scalar_one()
        totals[key] = int(count)
    return totals


def forget_days_before(conn: Connection, day: str) -> int:
    """Drop daily counts older than `day` (YYYY-MM-DD); only today's count matters."""
    return int(conn.execute(DAY.delete().where(DAY.c.day < day)).rowcount or 0)
