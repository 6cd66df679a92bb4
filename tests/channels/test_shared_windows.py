"""Weibo's hourly posts and voice's per-callee windows, shared by every process through Redis."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from channels.aliyun_voice import CALLEE_LIMITS
from channels.shared_windows import RedisCalleeLimiter, RedisPostWindow


async def test_post_window_is_shared_and_never_oversold(redis_url: str) -> None:
    key = f"gc-test:weibo:{uuid.uuid4().hex}"
    clients = [aioredis.from_url(redis_url) for _ in range(2)]  # two worker processes
    try:
        windows = [RedisPostWindow(client, key, per_hour=3) for client in clients]
        now = 1_000_000.0
        # Eight posts race for three places: exactly three get through.
        waits = await asyncio.gather(*(windows[i % 2].wait(now + i * 0.001) for i in range(8)))
        assert sorted(w == 0 for w in waits).count(True) == 3
        assert all(3599 < w <= 3600 for w in waits if w > 0)
        # An hour after the first post a place is free again, for either process.
        assert await windows[1].wait(now + 3600.5) == 0
    finally:
        for client in clients:
            await client.aclose()


async def test_callee_limits_hold_across_processes(redis_url: str) -> None:
    prefix = f"gc-test:voice:{uuid.uuid4().hex}:"
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    try:
        limiters = [RedisCalleeLimiter(client, prefix, CALLEE_LIMITS) for client in clients]
        t = 2_000_000.0
        assert await limiters[0].allow("13800000001", t)
        assert not await limiters[1].allow("13800000001", t + 30)  # 1 a minute, whoever asks
        assert await limiters[1].allow("13900000002", t + 30)  # another callee
        allowed = [await limiters[i % 2].allow("13800000001", t + 61 * (i + 1)) for i in range(6)]
        assert allowed == [True, True, True, True, False, False]  # 5 an hour
        # The wait until a place is free: the first call of the hour leaves the window at t + 3600.
        assert await limiters[0].reserve("13800000001", t + 61 * 7) == 3600 - 61 * 7
        keys = [k.decode() for k in await clients[0].keys(prefix + "*")]
        assert keys and not any("1380000" in k for k in keys)  # numbers are hashed in keys
    finally:
        for client in clients:
            await client.aclose()
