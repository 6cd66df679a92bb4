"""Provider callback freshness: a timestamp window and one use per nonce.

WeChat signs `timestamp` and `nonce` into every push; a captured push replayed later must be
refused. A nonce is remembered for twice the window (a timestamp up to WINDOW old or ahead stays
acceptable that long), in Redis when configured (every `serve` process sees it), else in memory.
"""

from __future__ import annotations

import threading
import time
from typing import Any

WINDOW_SECONDS = 300  # ±5 minutes around our clock
_MEMORY_LIMIT = 200_000


class NonceGuard:
    """Remembers (timestamp, nonce) pairs it has accepted."""

    def __init__(self, redis: Any = None, prefix: str = "govconnect") -> None:
        self.redis = redis
        self.prefix = f"{prefix}:callback-nonce:"
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def fresh(timestamp: str, now: float | None = None) -> bool:
        """True when the timestamp is whole seconds within WINDOW_SECONDS of now."""
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        return abs(int(timestamp) - (now if now is not None else time.time())) <= WINDOW_SECONDS

    async def first_use(self, scope: str, timestamp: str, nonce: str) -> bool:
        """True the first time this nonce is presented with this timestamp; False for a replay."""
        key = f"{scope}:{timestamp}:{nonce}"
        ttl = 2 * WINDOW_SECONDS
        if self.redis is not None:
            return bool(await self.redis.set(self.prefix + key, b"1", nx=True, ex=ttl))
        now = time.monotonic()
        with self._lock:
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            if len(self._seen) >= _MEMORY_LIMIT:
                for stale in [k for k, e in self._seen.items() if e <= now]:
                    del self._seen[stale]
            self._seen[key] = now + ttl
            return True

    async def release(self, scope: str, timestamp: str, nonce: str) -> None:
        """Forget a nonce whose push was not handled, so the provider's retry is accepted."""
        key = f"{scope}:{timestamp}:{nonce}"
        if self.redis is not None:
            await self.redis.delete(self.prefix + key)
            return
        with self._lock:
            self._seen.pop(key, None)
