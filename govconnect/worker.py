"""Queues and workers: arq on Redis in production, an in-process worker in embedded mode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob, cron
from arq.worker import func as arq_func

from govconnect.clock import CHINA_TZ
from govconnect.db import engine_from_settings
from govconnect.jobs import JOBS, load_job_modules
from govconnect.metrics import JOBS_RUN
from govconnect.operations.worker_metrics import start_worker_metrics
from govconnect.settings import Settings, get_settings

log = logging.getLogger("govconnect.worker")


class Queue(Protocol):
    """Where work is enqueued; both implementations accept the same calls."""

    async def enqueue(
        self, name: str, *, job_id: str | None = None, defer_by: float | None = None, **kwargs: Any
    ) -> bool: ...


class ArqQueue:
    """Enqueue onto arq's Redis queue."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def enqueue(
        self, name: str, *, job_id: str | None = None, defer_by: float | None = None, **kwargs: Any
    ) -> bool:
        """Enqueue a job; False when a job with the same id is already queued or running."""
        if name not in JOBS:
            raise KeyError(f"unknown job {name!r}")
        result = await self.redis.enqueue_job(
            name, _job_id=job_id, _defer_by=defer_by, _queue_name=self.queue_name, **kwargs
        )
        return result is not None


class InProcessQueue:
    """The embedded worker: the same job functions, run as asyncio tasks in this process."""

    def __init__(self, ctx: dict[str, Any], concurrency: int = 8) -> None:
        self.ctx = ctx
        self.ctx["queue"] = self
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], str | None]] = asyncio.Queue()
        self._pending: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        # Deferred jobs not yet due, by a token; a timer removes its own entry when it fires.
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0
        self.concurrency = concurrency
        self.results: dict[str, Any] = {}

    async def enqueue(
        self, name: str, *, job_id: str | None = None, defer_by: float | None = None, **kwargs: Any
    ) -> bool:
        """Enqueue a job; False when a job with the same id is already pending."""
        if name not in JOBS:
            raise KeyError(f"unknown job {name!r}")
        if job_id is not None:
            if job_id in self._pending:
                return False
            self._pending.add(job_id)
        item = (name, kwargs, job_id)
        if defer_by and defer_by > 0:
            self._next_timer += 1
            token = self._next_timer
            self._timers[token] = asyncio.get_running_loop().call_later(defer_by, self._due, token, item)
        else:
            self._queue.put_nowait(item)
        return True

    def _due(self, token: int, item: tuple[str, dict[str, Any], str | None]) -> None:
        self._timers.pop(token, None)
        self._queue.put_nowait(item)

    def depth(self) -> int:
        """Jobs waiting: queued to run now, plus deferred ones not yet due (quiet hours, retries)."""
        return self._queue.qsize() + len(self._timers)

    def start(self) -> None:
        """Start the consumer tasks."""
        for _ in range(self.concurrency):
            self._workers.append(asyncio.create_task(self._run()))

    async def stop(self) -> None:
        """Stop the consumers; queued work stays in the database and the sweeper picks it up."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def join(self) -> None:
        """Wait until every queued job has run (deferred ones excluded)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            name, kwargs, job_id = await self._queue.get()
            try:
                if job_id is not None:
                    self._pending.discard(job_id)
                result = await JOBS[name](self.ctx, **kwargs)
                if job_id is not None:
                    self.results[job_id] = result
                JOBS_RUN.labels(name, "ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                JOBS_RUN.labels(name, "error").inc()
                log.exception("job %s failed", name)
            finally:
                self._queue.task_done()


def redis_settings(url: str) -> RedisSettings:
    """arq RedisSettings from a redis:// URL."""
    return RedisSettings.from_dsn(url)


async def open_arq_queue(settings: Settings) -> ArqQueue:
    """Connect to Redis and return a queue that enqueues onto it."""
    pool = await create_pool(redis_settings(settings.redis_url), default_queue_name=settings.queue_name)
    return ArqQueue(pool, settings.queue_name)


async def _on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    ctx["engine"] = engine_from_settings(settings)
    ctx["queue"] = ArqQueue(ctx["redis"], settings.queue_name)
    ctx["process_state"] = {}
    ctx["metrics_port"] = start_worker_metrics(settings)
    log.info("worker started on queue %s", settings.queue_name)


async def _on_shutdown(ctx: dict[str, Any]) -> None:
    providers = ctx.get("process_state", {}).get("providers")
    if providers is not None:
        await providers.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        engine.dispose()


def cron_jobs(settings: Settings | None = None) -> Sequence[CronJob]:
    """Periodic jobs: the sweeper every 10 s, retention once a day."""
    settings = settings or get_settings()
    load_job_modules()
    # The notice sweeper: re-enqueue stuck deliveries, finish notices (every 10 s).
    return [
        cron(
            JOBS["sweep"],  # type: ignore[arg-type]
            name="sweep",
            second=set(range(0, 60, 10)),
            unique=True,
            run_at_startup=True,
        ),
        # Retention: once a day at RETENTION__DAILY_HOUR_BEIJING (the worker's cron runs in Beijing time).
        cron(
            JOBS["purge_expired_records"],  # type: ignore[arg-type]
            name="purge_expired_records",
            hour={settings.retention.daily_hour_beijing},
            minute={17},
            unique=True,
        ),
    ]


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker for this configuration."""
    load_job_modules()
    return {
        "functions": [arq_func(f, name=name) for name, f in JOBS.items()],  # type: ignore[arg-type]
        "cron_jobs": list(cron_jobs(settings)),
        "redis_settings": redis_settings(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": _on_startup,
        "on_shutdown": _on_shutdown,
        "ctx": {"settings": settings},
        "max_jobs": 20,
        "job_timeout": 300,
        "keep_result": 3600,
        "handle_signals": True,
        "timezone": CHINA_TZ,
    }
