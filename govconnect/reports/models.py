"""Report tables: one rollup row per agency, Beijing day, channel and provider, and failures by reason.

Rows are only ever incremented, in the same transaction as the change they count, so they stay
right when deliveries are purged and are never rebuilt by scanning deliveries.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

# Upper bounds (seconds) of the time-to-deliver histogram kept on each rollup row; the last
# bucket is open. Fixed buckets let rows of any days, channels or agencies be merged by addition.
TTD_BOUNDS: tuple[float, ...] = (5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600)
TTD_COLUMNS: tuple[str, ...] = tuple(f"ttd_b{i}" for i in range(len(TTD_BOUNDS) + 1))
# Counters kept on every rollup row (agency-level ones use channel "" and provider "").
COUNTERS: tuple[str, ...] = (
    "notices",
    "deliveries",
    "sent",
    "delivered",
    "failed",
    "unknown",
    "cancelled",
    "sms_parts",
    "optouts",
    "approvals",
    "approval_seconds",
)
ROLLUP_KEY = ("agency_id", "day", "channel", "provider")


class ReportRollup(SQLModel, table=True):
    """Counters for one agency, Beijing day, channel and provider."""

    __tablename__ = "report_rollup"
    __table_args__ = (Index("uq_report_rollup_key", *ROLLUP_KEY, unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(index=True)
    day: date
    channel: str = Field(default="", max_length=16)
    provider: str = Field(default="", max_length=32)
    notices: int = 0
    deliveries: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    sms_parts: int = 0
    optouts: int = 0
    approvals: int = 0
    approval_seconds: int = 0
    ttd_b0: int = 0
    ttd_b1: int = 0
    ttd_b2: int = 0
    ttd_b3: int = 0
    ttd_b4: int = 0
    ttd_b5: int = 0
    ttd_b6: int = 0
    ttd_b7: int = 0
    ttd_b8: int = 0
    ttd_b9: int = 0
    ttd_b10: int = 0
    ttd_b11: int = 0


class ReportFailure(SQLModel, table=True):
    """Failed deliveries by provider code, for one agency, Beijing day, channel and provider."""

    __tablename__ = "report_failure"
    __table_args__ = (Index("uq_report_failure_key", *ROLLUP_KEY, "reason", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(index=True)
    day: date
    channel: str = Field(default="", max_length=16)
    provider: str = Field(default="", max_length=32)
    reason: str = Field(default="", max_length=64)
    count: int = 0
