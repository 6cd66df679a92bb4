"""Pipeline metrics read from the truth (database, Redis), so /metrics covers every worker process.

Counters of attempts and latency histograms live in the process that sends (the in-process worker
in embedded mode); queue depth and deliveries by channel, provider and status come from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from govconnect.notices.pipeline_models import Delivery

log = logging.getLogger("govconnect.notices")
D = Delivery.__table__  # type: ignore[attr-defined]
CACHE_SECONDS = 5.0


class PipelineCollector(Collector):
    """Queue depth and delivery counts; the query result is cached for a few seconds."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.queue: Any = None
        self.redis_url = ""
        self.queue_name = ""
        self._cache: tuple[float, list[tuple[str, str, str, int]]] = (0.0, [])

    def _counts(self) -> list[tuple[str, str, str, int]]:
        stamp, rows = self._cache
        if time.monotonic() - stamp < CACHE_SECONDS or self.engine is None:
            return rows
        with self.engine.connect() as conn:
            result = conn.execute(
                select(D.c.channel, D.c.provider, D.c.status, func.count()).group_by(
                    D.c.channel, D.c.provider, D.c.status
                )
            ).all()
        rows = [(str(c), str(p or "-"), str(s), int(n)) for c, p, s, n in result]
        self._cache = (time.monotonic(), rows)
        return rows

    def _queue_depth(self) -> int | None:
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url, socket_timeout=1)
            try:
                return int(client.zcard(self.queue_name))  # type: ignore[arg-type]
            finally:
                client.close()
        inner = getattr(self.queue, "_queue", None)
        return inner.qsize() if inner is not None else None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the gauges (errors are logged, never break /metrics)."""
        deliveries = GaugeMetricFamily(
            "govconnect_deliveries",
            "Deliveries by channel, provider and status",
            labels=["channel", "provider", "status"],
        )
        depth = GaugeMetricFamily("govconnect_queue_depth", "Jobs waiting in the work queue")
        try:
            for channel, provider, status, count in self._counts():
                deliveries.add_metric([channel, provider, status], count)
            queued = self._queue_depth()
            if queued is not None:
                depth.add_metric([], queued)
        except Exception:  # noqa: BLE001 - metrics must not fail the scrape
            log.warning("pipeline metrics unavailable", exc_info=True)
        yield deliveries
        yield depth


COLLECTOR = PipelineCollector()
REGISTRY.register(COLLECTOR)


def bind(app: Any) -> None:
    """Point the collector at this app's database and queue (the latest app wins)."""
    settings = app.state.settings
    COLLECTOR.engine = app.state.engine
    COLLECTOR.queue = app.state.queue
    COLLECTOR.redis_url = settings.redis_url
    COLLECTOR.queue_name = settings.queue_name
    COLLECTOR._cache = (0.0, [])
