"""The shared access token: early refresh, one refresh for concurrent callers, stale tokens skipped."""

from __future__ import annotations

import asyncio

from channels.tokens import AccessToken, MemoryTokenStore


class Issuer:
    """A token endpoint stand-in that counts calls (the HTTP side is tested against the sandbox)."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0

    async def __call__(self) -> tuple[str, float]:
        self.calls += 1
        await asyncio.sleep(0.02)  # let concurrent callers pile up on the lock
        return f"tok-{self.calls}", self.lifetime


async def test_refreshed_before_expiry() -> None:
    issuer = Issuer(lifetime=0.5)
    token = AccessToken("k", issuer, MemoryTokenStore(), margin=300)
    assert await token.get() == "tok-1"
    assert await token.get() == "tok-1"
    await asyncio.sleep(0.46)  # within a tenth of the lifetime of expiring: refresh now
    assert await token.get() == "tok-2"


async def test_concurrent_callers_share_one_refresh() -> None:
    issuer = Issuer(lifetime=7200)
    store = MemoryTokenStore()
    tokens = [AccessToken("k", issuer, store) for _ in range(20)]
    got = await asyncio.gather(*(t.get() for t in tokens))
    assert set(got) == {"tok-1"} and issuer.calls == 1
    rejected = "tok-1"
    got = await asyncio.gather(*(t.get(stale=rejected) for t in tokens))
    assert set(got) == {"tok-2"} and issuer.calls == 2


class CountingStore(MemoryTokenStore):
    """A shared store that counts reads (each one a Redis round trip in production)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().get(key)


async def test_token_reused_locally_for_a_few_seconds_unless_rejected() -> None:
    issuer = Issuer(lifetime=7200)
    store = CountingStore()
    token = AccessToken("k", issuer, store, local_seconds=0.2)
    assert await token.get() == "tok-1"
    reads = store.reads
    for _ in range(50):
        assert await token.get() == "tok-1"
    assert store.reads == reads  # fifty sends, no store round trip
    other = AccessToken("k", issuer, store)  # another worker refreshes after a rejection
    assert await other.get(stale="tok-1") == "tok-2"
    await asyncio.sleep(0.25)
    assert await token.get() == "tok-2" and store.reads > reads  # the local copy expired: read the store
    assert await token.get(stale="tok-2") == "tok-3" and issuer.calls == 3
