"""Time, defined once: `utcnow()` for what we store, `CHINA_TZ` for what people read."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Timezone-aware now in UTC (SQLModel stores aware datetimes and returns them in UTC)."""
    return datetime.now(UTC)
