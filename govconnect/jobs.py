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


def load_job_modules() -> None:
    """Import every module that registers jobs, so the registry is complete."""
    # Later capabilities add their job modules here.
    import govconnect.notices.jobs  # noqa: F401
