"""Each arq worker serves its own Prometheus metrics (attempts, latency, provider results, circuits)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from govconnect.settings import Settings

log = logging.getLogger("govconnect.operations")
PORTS_TO_TRY = 32  # several workers on one machine take the next free port each


def start_worker_metrics(settings: Settings, host: str = "0.0.0.0") -> int | None:
    """Serve /metrics on the first free port from MONITORING__WORKER_METRICS_PORT; None when disabled."""
    first = settings.monitoring.worker_metrics_port
    if not first:
        return None
    for port in range(first, min(65536, first + PORTS_TO_TRY)):
        try:
            start_http_server(port, addr=host)
        except OSError:
            continue
        log.info("worker metrics on http://%s:%d/metrics", host, port)
        return port
    log.warning("no free port for worker metrics in %d-%d", first, first + PORTS_TO_TRY - 1)
    return None
