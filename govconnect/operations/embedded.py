"""Embedded mode: the daily retention purge the arq cron runs in production."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from fastapi import FastAPI

from govconnect.clock import CHINA_TZ
from govconnect.worker import InProcessQueue


def seconds_until_hour(now: datetime, hour: int) -> float:
    """Seconds from `now` until the next time it is `hour`:17 in Beijing."""
    local = now.astimezone(CHINA_TZ)
    target = local.replace(hour=hour, minute=17, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return (target - local).total_seconds()


async def _daily_purge_loop(queue: InProcessQueue, hour: int) -> None:
    while True:
        await asyncio.sleep(seconds_until_hour(datetime.now(CHINA_TZ), hour))
        await queue.enqueue("purge_expired_records", job_id="purge_expired_records")


async def start_daily_purge(app: FastAPI) -> None:
    """Run retention once a day inside this process when there is no arq worker."""
    queue = app.state.queue
    if isinstance(queue, InProcessQueue):
        hour = app.state.settings.retention.daily_hour_beijing
        app.state.daily_purge = asyncio.create_task(_daily_purge_loop(queue, hour))


async def stop_daily_purge(app: FastAPI) -> None:
    """Stop the daily timer."""
    task = getattr(app.state, "daily_purge", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install(app: FastAPI) -> None:
    """Register the operations start-up and shutdown hooks."""
    app.state.startup_hooks.append(start_daily_purge)
    app.state.shutdown_hooks.append(stop_daily_purge)
