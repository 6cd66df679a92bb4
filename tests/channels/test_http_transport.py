"""ShardedTransport: many requests in flight over several small pools, each connection reused."""

from __future__ import annotations

import asyncio

import httpx

from channels.http import ShardedTransport
from tests.channels.conftest import Sandbox


async def test_requests_spread_over_small_pools_and_reuse_connections(sandbox: Sandbox) -> None:
    transport = ShardedTransport(max_connections=12, per_pool=4)
    assert len(transport.pools) == 3
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        for _ in range(3):  # three rounds of 30 concurrent requests
            answers = await asyncio.gather(*(client.get(f"{sandbox.url}/_sandbox") for _ in range(30)))
            assert {r.status_code for r in answers} == {200}
        opened = [len(pool._pool.connections) for pool in transport.pools]
    # Every pool was used and none held more than its share of connections.
    assert all(1 <= n <= 4 for n in opened), opened
    assert not any(pool._pool.connections for pool in transport.pools)  # closed with the client
