"""Time, defined once: `utcnow()` for what we store, `CHINA_TZ` for what people read."""

from __future__ import annotations

from datetime import UTC, date, datetime

from channels.base import CHINA_TZ

__all__ = ["CHINA_TZ", "china_date", "utcnow"]


def utcnow() -> datetime:
    """Timezone-aware now in UTC (SQLModel stores aware datetimes and returns them in UTC)."""
    return datetime.now(UTC)


def china_date(moment: datetime) -> date:
    """The calendar day in China at `moment` (an aware datetime)."""
    return moment.astimezone(CHINA_TZ).date()
