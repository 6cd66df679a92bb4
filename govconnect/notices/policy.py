"""Sending policy: clock, quiet hours, backoff, templates and channel limits."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from govconnect.clock import CHINA_TZ, utcnow

T = TypeVar("T")
QUIET_START = time(22, 0)
QUIET_END = time(7, 0)
QUIET_CHANNELS = ("sms", "voice")
PLACEHOLDER = re.compile(r"\(\(\s*([^()\s]+)\s*\)\)")

# Longest text (characters, template included) each channel takes.


def now(ctx: dict[str, Any]) -> datetime:
    """The current time; tests put a fixed `clock` in the job context."""
    clock = ctx.get("clock")
    return clock() if clock is not None else utcnow()


def quiet_until(moment: datetime, channel: str, urgency: str) -> datetime | None:
    """When quiet hours end, if a normal SMS/voice message must wait at `moment`; else None."""
    if urgency == "urgent" or channel not in QUIET_CHANNELS:
        return None
    local = moment.astimezone(CHINA_TZ)
    if QUIET_END <= local.time() < QUIET_START:
        return None
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=CHINA_TZ).astimezone(moment.tzinfo)


def backoff_seconds(attempts: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half to full), never sooner than the provider's Retry-After."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def placeholders(template: str) -> set[str]:
    """The `((name))` placeholders of a template."""
    return set(PLACEHOLDER.findall(template))


def render(template: str, params: dict[str, Any]) -> str:
    """Fill `((name))` placeholders from the recipient's parameters (missing ones become empty)."""
    return PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), "")), template)


def template_length(template: str) -> int:
    """Length of a template without its placeholders (they are filled per recipient)."""
    return len(PLACEHOLDER.sub("", template))


# Database work of the pipeline runs in these threads, not the loop's small default pool: the
# fan-out gets its own so twenty concurrent send jobs cannot starve it.
_DB_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="notices-db")
_FANOUT_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notices-fanout")


async def run_db(func: Callable[..., T], *args: Any) -> T:
    """Run blocking database work in the pipeline's thread pool."""
    return await asyncio.get_running_loop().run_in_executor(_DB_POOL, func, *args)


async def run_fanout_db(func: Callable[..., T], *args: Any) -> T:
    """Run the fan-out's blocking database work in its own threads."""
    return await asyncio.get_running_loop().run_in_executor(_FANOUT_POOL, func, *args)
