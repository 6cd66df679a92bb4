"""Pipeline metrics read from the truth (database, Redis), so /metrics covers every worker process.

Counters of attempts and latency histograms live in the process that sends (each arq worker
serves its own on `MONITORING__WORKER_METRICS_PORT`); outcome totals come from the report
rollups (a few hundred rows, never a scan of the delivery table), pending and held work from the
pending partial index, queue depth from Redis (or the embedded queue, deferred jobs included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from govconnect.agencies.models import Agency
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import HELD_REASONS, Delivery
from govconnect.reports.models import ReportRollup

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
N = Notice.__table__  # type: ignore[attr-defined]
R = ReportRollup.__table__  # type: ignore[attr-defined]
A = Agency.__table__  # type: ignore[attr-defined]
CACHE_SECONDS = 5.0
# Rollup columns exported as outcome totals (`deliveries` = written by fan-out).
OUTCOMES = ("deliveries", "sent", "delivered", "failed", "unknown", "cancelled")


def _timestamp(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class PipelineCollector(Collector):
    """Outcome totals, pending work and freshness; the query results are cached for a few seconds."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.queue: Any = None
        self.redis_url = ""
        self.queue_name = ""
        self._cache: tuple[float, dict[str, Any]] = (0.0, {})

    def _read(self) -> dict[str, Any]:
        stamp, data = self._cache
        if time.monotonic() - stamp < CACHE_SECONDS or self.engine is None:
            return data
        sums = [func.coalesce(func.sum(R.c[name]), 0) for name in OUTCOMES]
        with self.engine.connect() as conn:
            by_provider = conn.execute(
                select(R.c.channel, R.c.provider, *sums).where(R.c.channel != "").group_by(R.c.channel, R.c.provider)
            ).all()
            by_agency = conn.execute(select(A.c.code, *sums).join(A, A.c.id == R.c.agency_id).group_by(A.c.code)).all()
            # Held work is pending work, counted in the same pass: queued, due later, for a reason.
            held_now = D.c.next_attempt_at > datetime.now(UTC)
            pending: Any = conn.execute(
                select(
                    func.count(),
                    func.min(D.c.created_at),
                    *(func.count().filter(held_now, D.c.held_reason == reason) for reason in HELD_REASONS),
                ).where(D.c.next_attempt_at.is_not(None))
            ).one()
            last_weibo = conn.execute(
                select(func.max(D.c.sent_at)).where(
                    D.c.recipient == "public", D.c.channel == "weibo", D.c.status.in_(("sent", "delivered"))
                )
            ).scalar()
            newest_public = conn.execute(
                select(func.max(N.c.created_at)).where(N.c.public.is_(True), N.c.status != "cancelled")
            ).scalar()
        data = {
            "by_provider": [(str(r[0]), str(r[1] or "-"), [int(v) for v in r[2:]]) for r in by_provider],
            "by_agency": [(str(r[0]), [int(v) for v in r[1:]]) for r in by_agency],
            "pending": int(pending[0]),
            "oldest_pending": _timestamp(pending[1]),
            "held": dict(zip(HELD_REASONS, (int(v) for v in pending[2:]), strict=True)),
            "last_weibo": _timestamp(last_weibo),
            "newest_public": _timestamp(newest_public),
        }
        self._cache = (time.monotonic(), data)
        return data

    def _queue_depth(self) -> int | None:
        """Jobs waiting, deferred ones included (arq keeps those in the same sorted set, scored later)."""
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url, socket_timeout=1)
            try:
                return int(client.zcard(self.queue_name))  # type: ignore[arg-type]
            finally:
                client.close()
        depth = getattr(self.queue, "depth", None)
        return int(depth()) if depth is not None else None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the metrics (errors are logged, never break /metrics)."""
        deliveries = CounterMetricFamily(
            "govconnect_deliveries",
            "Delivery outcomes by channel and provider (from the report rollups)",
            labels=["channel", "provider", "outcome"],
        )
        by_agency = CounterMetricFamily(
            "govconnect_agency_deliveries",
            "Delivery outcomes by agency code (one series per agency and outcome)",
            labels=["agency", "outcome"],
        )
        depth = GaugeMetricFamily("govconnect_queue_depth", "Jobs waiting in the work queue")
        pending = GaugeMetricFamily("govconnect_pending_deliveries", "Deliveries queued or being sent")
        held = GaugeMetricFamily(
            "govconnect_held_deliveries",
            "Queued deliveries held back until a known time, by reason (quiet_hours: normal SMS/voice until 07:00)",
            labels=["reason"],
        )
        oldest = GaugeMetricFamily(
            "govconnect_oldest_pending_delivery_age_seconds", "Age of the oldest delivery still queued or sending"
        )
        weibo = GaugeMetricFamily("govconnect_last_weibo_post_timestamp_seconds", "When the last Weibo post went out")
        feed = GaugeMetricFamily(
            "govconnect_feed_newest_item_timestamp_seconds", "When the newest public notice (TV feed item) was made"
        )
        try:
            data = self._read()
            for channel, provider, values in data.get("by_provider", []):
                for outcome, value in zip(OUTCOMES, values, strict=True):
                    deliveries.add_metric([channel, provider, outcome], value)
            for code, values in data.get("by_agency", []):
                for outcome, value in zip(OUTCOMES, values, strict=True):
                    by_agency.add_metric([code, outcome], value)
            if "pending" in data:
                pending.add_metric([], data["pending"])
                oldest.add_metric([], max(0.0, time.time() - data["oldest_pending"]) if data["oldest_pending"] else 0)
                for reason, count in data["held"].items():
                    held.add_metric([reason], count)
            if data.get("last_weibo"):
                weibo.add_metric([], data["last_weibo"])
            if data.get("newest_public"):
                feed.add_metric([], data["newest_public"])
            queued = self._queue_depth()
            if queued is not None:
                depth.add_metric([], queued)
        except Exception:  # noqa: BLE001 - metrics must not fail the scrape
            log.warning("pipeline metrics unavailable", exc_info=True)
        yield from (deliveries, by_agency, depth, pending, held, oldest, weibo, feed)


COLLECTOR = PipelineCollector()
REGISTRY.register(COLLECTOR)


def bind(app: Any) -> None:
    """Point the collector at this app's database and queue (the latest app wins)."""
    settings = app.state.settings
    COLLECTOR.engine = app.state.engine
    COLLECTOR.queue = app.state.queue
    COLLECTOR.redis_url = settings.redis_url
    COLLECTOR.queue_name = settings.queue_name
    COLLECTOR._cache = (0.0, {})
