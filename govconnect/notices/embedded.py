"""Embedded mode: the sweeper loop the arq cron runs in production, and provider clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from govconnect.jobs import load_job_modules
from govconnect.notices import metrics
from govconnect.worker import InProcessQueue

log = logging.getLogger("govconnect.notices")


async def _sweep_loop(queue: InProcessQueue, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await queue.enqueue("sweep", job_id="sweep")


async def start_embedded_sweeper(app: FastAPI) -> None:
    """Run the sweeper every few seconds inside this process when there is no arq worker."""
    metrics.bind(app)
    queue = app.state.queue
    if isinstance(queue, InProcessQueue):
        interval = app.state.settings.notices.sweep_interval_seconds
        app.state.notice_sweeper = asyncio.create_task(_sweep_loop(queue, interval))


async def stop_embedded_sweeper(app: FastAPI) -> None:
    """Stop the sweeper loop and close provider connections of the in-process worker."""
    task = getattr(app.state, "notice_sweeper", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    queue = app.state.queue
    ctx = getattr(queue, "ctx", {})
    providers = ctx.get("process_state", {}).get("providers")
    if providers is not None:
        await providers.aclose()


def install(app: FastAPI) -> None:
    """Register the notice pipeline's jobs and its startup and shutdown hooks on the app."""
    load_job_modules()
    app.state.startup_hooks.append(start_embedded_sweeper)
    app.state.shutdown_hooks.append(stop_embedded_sweeper)
