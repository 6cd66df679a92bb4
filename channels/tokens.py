"""Access tokens (WeChat, WeCom) cached and shared by every worker, refreshed from one place.

A provider's new token invalidates the old one, so two processes refreshing at once would make
each other's token stale. The store therefore has a lock: in memory for one process, in Redis
(SET NX with expiry, released only by its owner) when a Redis client is injected. Whoever holds
the lock re-reads the cache first, so concurrent senders that all saw an expired token end up
with exactly one refresh.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from channels.base import RetryableError


@dataclass(frozen=True)
class CachedToken:
    """A token and when to stop using it (epoch seconds, a safety margin before it really expires)."""

    token: str
    expires_at: float


class TokenStore(Protocol):
    """Where tokens live and how their refresh is serialised."""

    async def get(self, key: str) -> CachedToken | None:
        """The cached token, if any."""

    async def set(self, key: str, token: CachedToken) -> None:
        """Cache a token until it expires."""

    def lock(self, key: str) -> Any:
        """An async context manager held while refreshing `key`."""


class MemoryTokenStore:
    """Tokens for one process."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> CachedToken | None:
        """The cached token, if any."""
        return self._tokens.get(key)

    async def set(self, key: str, token: CachedToken) -> None:
        """Cache a token."""
        self._tokens[key] = token

    def lock(self, key: str) -> asyncio.Lock:
        """One asyncio lock per key."""
        return self._locks.setdefault(key, asyncio.Lock())


class RedisTokenStore:
    """Tokens shared through Redis (`redis.asyncio.Redis`), refresh guarded by a Redis lock."""

    def __init__(
        self, redis: Any, prefix: str = "govconnect:token:", lock_timeout: float = 15.0, wait: float = 20.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.lock_timeout = lock_timeout
        self.wait = wait

    async def get(self, key: str) -> CachedToken | None:
        """The cached token, if any."""
        raw = await self.redis.get(self.prefix + key)
        if not raw:
            return None
        data = json.loads(raw)
        return CachedToken(str(data["token"]), float(data["expires_at"]))

    async def set(self, key: str, token: CachedToken) -> None:
        """Cache a token; Redis drops it when it expires."""
        ttl_ms = max(1000, int((token.expires_at - time.time()) * 1000))
        await self.redis.set(
            self.prefix + key, json.dumps({"token": token.token, "expires_at": token.expires_at}), px=ttl_ms
        )

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """SET NX PX lock; only the owner (by random value) deletes it; waits at most `wait` seconds."""
        name = f"{self.prefix}{key}:lock"
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while not await self.redis.set(name, owner, nx=True, px=int(self.lock_timeout * 1000)):
            if time.monotonic() > deadline:
                raise RetryableError("token_lock", "token refresh lock not acquired")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            # Compare-and-delete so a lock that timed out and was taken by another is left alone.
            await self.redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                1,
                name,
                owner,
            )


Fetcher = Callable[[], Awaitable[tuple[str, float]]]


class AccessToken:
    """A provider token kept in a store, refreshed `margin` seconds before it expires."""

    def __init__(
        self,
        key: str,
        fetch: Fetcher,
        store: TokenStore | None = None,
        margin: float = 300.0,
        local_seconds: float = 5.0,
    ) -> None:
        self.key = key
        self.fetch = fetch
        self.store: TokenStore = store or MemoryTokenStore()
        self.margin = margin
        self.refreshes = 0
        # A token read from a shared store is reused here for a few seconds: one store round trip
        # per message was a Redis call for every WeChat message sent. A rejected token skips it.
        self.local_seconds = local_seconds
        self._local: tuple[CachedToken, float] | None = None

    def _usable(self, cached: CachedToken | None, stale: str | None) -> bool:
        return cached is not None and cached.token != stale and cached.expires_at > time.time()

    async def get(self, stale: str | None = None) -> str:
        """A valid token; `stale` is one the provider just rejected, so it is never returned."""
        if self._local is not None:
            local, read_at = self._local
            if time.monotonic() - read_at < self.local_seconds and self._usable(local, stale):
                return local.token
        cached = await self.store.get(self.key)
        if cached is not None and self._usable(cached, stale):
            self._local = (cached, time.monotonic())
            return cached.token
        async with self.store.lock(self.key):
            cached = await self.store.get(self.key)
            if cached is not None and self._usable(cached, stale):
                return cached.token  # another sender refreshed while we waited
            token, expires_in = await self.fetch()
            self.refreshes += 1
            # Refresh before expiry: `margin` seconds early, or a tenth of a short lifetime.
            use_until = time.time() + expires_in - min(self.margin, expires_in / 10)
            await self.store.set(self.key, CachedToken(token, use_until))
            self._local = (CachedToken(token, use_until), time.monotonic())
            return token
