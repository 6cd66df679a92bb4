"""Posting windows shared by every worker through Redis: Weibo's posts an hour, voice calls per callee.

The in-process `PostWindow` and `CalleeLimiter` count what one process sent; with several
workers on several machines each would allow the whole quota. These keep the same windows in
Redis sorted sets and check-and-record in one Lua script, so two workers can never both take the
last place. Callee numbers are hashed before they become part of a key.
"""

from __future__ import annotations

import hashlib
import inspect
import time
import uuid
from typing import Any, TypeVar

T = TypeVar("T")

# KEYS[1] sorted set; ARGV: now, longest window, then (window, allowed) pairs. Returns 0 when the
# call was recorded, else the seconds until the first full window has room again.
_RESERVE = """
local now = tonumber(ARGV[1])
local longest = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local wait = 0
for i = 4, #ARGV, 2 do
  local window = tonumber(ARGV[i])
  local allowed = tonumber(ARGV[i + 1])
  local members = redis.call('ZRANGEBYSCORE', KEYS[1], now - window, '+inf', 'WITHSCORES')
  local count = #members / 2
  if count >= allowed then
    local oldest = tonumber(members[2 + 2 * (count - allowed)])
    local until_free = oldest + window - now
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return tostring(wait) end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(longest) + 1)
return '0'
"""


async def maybe_await(value: T | Any) -> T:
    """The value, awaited first when it is awaitable (in-process windows answer at once, Redis ones later)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def _reserve(redis: Any, key: str, limits: tuple[tuple[float, int], ...], now: float | None) -> float:
    now = time.time() if now is None else now
    longest = max((window for window, _ in limits), default=0.0)
    args: list[Any] = [now, longest, uuid.uuid4().hex]
    for window, allowed in limits:
        args += [window, allowed]
    answer = await redis.eval(_RESERVE, 1, key, *args)
    return float(answer.decode() if isinstance(answer, bytes) else answer)


class RedisPostWindow:
    """Weibo's posts an hour for the whole deployment; `wait` reserves the place when there is one."""

    def __init__(self, redis: Any, key: str, per_hour: int, window: float = 3600.0) -> None:
        self.redis = redis
        self.key = key
        self.limits = ((window, per_hour),)

    async def wait(self, now: float | None = None) -> float:
        """0 when a post may go now (its place is taken), else seconds until one may."""
        return await _reserve(self.redis, self.key, self.limits, now)

    def record(self, now: float | None = None) -> None:
        """Nothing to do: `wait` already took the place (a post that then fails still counts)."""


class RedisCalleeLimiter:
    """Voice calls per callee (1/min, 5/h, 20/day) for the whole deployment."""

    def __init__(self, redis: Any, prefix: str, limits: tuple[tuple[float, int], ...]) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limits = limits

    async def allow(self, callee: str, now: float | None = None) -> bool:
        """Record a call and return True when every window has room; False (not recorded) otherwise."""
        return await self.reserve(callee, now) == 0

    async def reserve(self, callee: str, now: float | None = None) -> float:
        """Record a call and return 0 when every window has room; else the seconds until they all do."""
        digest = hashlib.sha256(callee.encode()).hexdigest()[:32]
        return await _reserve(self.redis, f"{self.prefix}{digest}", self.limits, now)
