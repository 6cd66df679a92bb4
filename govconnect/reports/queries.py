"""Read the rollups: per-agency summaries over a range of Beijing days, and monthly scorecards."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from govconnect.agencies.models import Agency
from govconnect.reports.models import COUNTERS, TTD_BOUNDS, TTD_COLUMNS, ReportFailure, ReportRollup

R = ReportRollup.__table__  # type: ignore[attr-defined]
F = ReportFailure.__table__  # type: ignore[attr-defined]
A = Agency.__table__  # type: ignore[attr-defined]
# A delivery reached its recipient "in time" when it was delivered within this many seconds.
TIMELY_SECONDS = 300


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """A percentile (seconds) from histogram counts per TTD bucket, interpolated inside the bucket."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = TTD_BOUNDS[i - 1] if i > 0 else 0.0
            # The open last bucket is reported at its lower bound: "more than 12 h".
            high = TTD_BOUNDS[i] if i < len(TTD_BOUNDS) else low
            return round(low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return float(TTD_BOUNDS[-1])


def timely_count(histogram: Sequence[int]) -> int:
    """Deliveries delivered within TIMELY_SECONDS (a bucket boundary)."""
    return sum(histogram[: TTD_BOUNDS.index(TIMELY_SECONDS) + 1])


@dataclass
class Tally:
    """Counters, histogram and failures summed over some rollup rows."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    histogram: list[int] = field(default_factory=lambda: [0] * len(TTD_COLUMNS))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add_row(self, row: Any) -> None:
        """Add one rollup row."""
        for name in COUNTERS:
            self.counters[name] += int(getattr(row, name) or 0)
        for i, column in enumerate(TTD_COLUMNS):
            self.histogram[i] += int(getattr(row, column) or 0)

    def as_dict(self) -> dict[str, Any]:
        """Counters, percentiles and failures for the API."""
        out: dict[str, Any] = {name: value for name, value in self.counters.items() if name != "approval_seconds"}
        out["time_to_deliver_p50_seconds"] = percentile(self.histogram, 0.50)
        out["time_to_deliver_p95_seconds"] = percentile(self.histogram, 0.95)
        approvals = self.counters["approvals"]
        out["approval_turnaround_avg_seconds"] = (
            round(self.counters["approval_seconds"] / approvals, 1) if approvals else None
        )
        out["failures_by_reason"] = dict(sorted(self.failures.items(), key=lambda item: (-item[1], item[0])))
        return out


def _rows(conn: Connection, table: Any, agency_ids: Sequence[int] | None, start: date, end: date) -> list[Any]:
    query = select(table).where(table.c.day >= start, table.c.day <= end)
    if agency_ids is not None:
        query = query.where(table.c.agency_id.in_(list(agency_ids)))
    return list(conn.execute(query.order_by(table.c.agency_id, table.c.day)).all())


def agency_reports(conn: Connection, agency_ids: Sequence[int] | None, start: date, end: date) -> list[dict[str, Any]]:
    """One report per agency with activity (or asked for by id) between two Beijing days, inclusive."""
    totals: dict[int, Tally] = defaultdict(Tally)
    by_channel: dict[int, dict[tuple[str, str], Tally]] = defaultdict(lambda: defaultdict(Tally))
    for row in _rows(conn, R, agency_ids, start, end):
        totals[row.agency_id].add_row(row)
        if row.channel:
            by_channel[row.agency_id][(row.channel, row.provider)].add_row(row)
    for row in _rows(conn, F, agency_ids, start, end):
        totals[row.agency_id].failures[row.reason] += int(row.count)
        by_channel[row.agency_id][(row.channel, row.provider)].failures[row.reason] += int(row.count)
    wanted = set(totals) | set(agency_ids or ())
    agencies = conn.execute(select(A.c.id, A.c.code, A.c.name).where(A.c.id.in_(sorted(wanted)))).all()
    reports = []
    for agency in sorted(agencies, key=lambda a: a.code):
        channels = [
            {"channel": channel, "provider": provider or None, **tally.as_dict()}
            for (channel, provider), tally in sorted(by_channel[agency.id].items())
        ]
        reports.append(
            {
                "agency": {"id": agency.id, "code": agency.code, "name": agency.name},
                "totals": totals[agency.id].as_dict(),
                "channels": channels,
            }
        )
    return reports


def month_range(month: date) -> tuple[date, date]:
    """First and last day of the month holding `month`."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def scorecard(conn: Connection, agency_id: int, month: date) -> dict[str, Any]:
    """Monthly scorecard: delivery rate, timeliness, opt-out rate, failures by reason, and per day."""
    start, end = month_range(month)
    month_tally = Tally()
    days: dict[date, Tally] = defaultdict(Tally)
    for row in _rows(conn, R, [agency_id], start, end):
        month_tally.add_row(row)
        days[row.day].add_row(row)
    for row in _rows(conn, F, [agency_id], start, end):
        month_tally.failures[row.reason] += int(row.count)
    c = month_tally.counters
    finished = c["delivered"] + c["failed"] + c["unknown"]
    daily = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        t = days.get(day) or Tally()
        daily.append(
            {
                "day": day.isoformat(),
                "deliveries": t.counters["deliveries"],
                "delivered": t.counters["delivered"],
                "failed": t.counters["failed"],
                "delivery_rate": _rate(
                    t.counters["delivered"], t.counters["delivered"] + t.counters["failed"] + t.counters["unknown"]
                ),
            }
        )
    return {
        "month": start.strftime("%Y-%m"),
        "notices": c["notices"],
        "deliveries": c["deliveries"],
        "delivered": c["delivered"],
        "failed": c["failed"],
        "unknown": c["unknown"],
        "delivery_rate": _rate(c["delivered"], finished),
        "timeliness": _rate(timely_count(month_tally.histogram), c["delivered"]),
        "timely_within_seconds": TIMELY_SECONDS,
        "time_to_deliver_p50_seconds": percentile(month_tally.histogram, 0.5),
        "time_to_deliver_p95_seconds": percentile(month_tally.histogram, 0.95),
        "optouts": c["optouts"],
        "optout_rate": _rate(c["optouts"], c["delivered"]),
        "sms_parts": c["sms_parts"],
        "failures_by_reason": month_tally.as_dict()["failures_by_reason"],
        "days": daily,
    }
