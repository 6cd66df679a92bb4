"""Job registry: every background job is a plain async function registered here.

The same functions run in arq workers on Redis and in the embedded in-process worker.
Each receives `ctx` with `settings`, `engine` and `queue` (and `redis` under arq), and must be
idempotent: arq may run a job twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

JobFunc = Callable[..., Awaitable[Any]]
JOBS: dict[str, JobFunc] = {}


def job(func: JobFunc) -> JobFunc:
    """Register a job function under its own name."""
    JOBS[func.__name__] = func
    return func


@job
async def ping(ctx: dict[str, Any], value: str = "pong") -> str:
    """A trivial job that proves the queue carries work end to end."""
    return value


def process_state(ctx: dict[str, Any]) -> dict[str, Any]:
    """Objects that live as long as the worker process: provider clients, rate limiter, semaphores.

    arq hands every job a fresh copy of its context, so a job that caches in `ctx` itself caches
    for that job only; this dict is shared by every copy (set up in the worker's start-up).
    """
    state = ctx.get("process_state")
    if state is None:
        state = ctx["process_state"] = {}
    return state


def load_job_modules() -> None:
    """Import every module that registers jobs, so the registry is complete."""
    # Later capabilities add their job modules here.
    import govconnect.governance.retraction  # noqa: F401
    import govconnect.notices.jobs  # noqa: F401
    import govconnect.operations.retention  # noqa: F401
