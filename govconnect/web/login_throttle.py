"""Sign-in throttling: a per-address cap, and a per-account delay that slows guessing without locking anyone out.

- Each client address may fail `IP_FAILURES` times per `WINDOW`; then it waits for the window.
- After `ACCOUNT_FREE_FAILURES` failures on one account (from anywhere), an address that has
  itself failed on that account must wait 2, 4, 8 ... up to `MAX_DELAY_SECONDS` seconds after its
  last failure before its next try. An address with no failures on the account is not delayed,
  so an attacker's guesses never keep the real user from signing in from their own device.
- A successful sign-in clears the account's count.

Counters live in Redis when it is configured (every `serve` process shares them), else in memory.
Keys use the normalised username (`normalise_username`), the same value the account lookup uses.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

import redis as redis_lib

from govconnect.security import normalise_username

__all__ = ["LoginThrottle", "MemoryCounters", "RedisCounters", "normalise_username"]

IP_FAILURES = 20
WINDOW_SECONDS = 15 * 60
ACCOUNT_FREE_FAILURES = 5
MAX_DELAY_SECONDS = 60


class CounterStore(Protocol):
    """Expiring integer counters and timestamps."""

    def incr(self, key: str, ttl: int) -> int: ...
    def get(self, key: str) -> float | None: ...
    def put(self, key: str, value: float, ttl: int) -> None: ...
    def ttl(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...


class MemoryCounters:
    """In-process counters (embedded mode)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> tuple[float, float] | None:
        item = self._values.get(key)
        if item is not None and item[1] <= now:
            del self._values[key]
            return None
        return item

    def incr(self, key: str, ttl: int) -> int:
        now = time.time()
        with self._lock:
            item = self._live(key, now)
            value, expires = (item[0] + 1, item[1]) if item else (1.0, now + ttl)
            self._values[key] = (value, expires)
            if len(self._values) > 100_000:  # bound memory under a flood of made-up names
                for stale in [k for k, (_v, e) in self._values.items() if e <= now]:
                    del self._values[stale]
            return int(value)

    def get(self, key: str) -> float | None:
        with self._lock:
            item = self._live(key, time.time())
        return item[0] if item else None

    def put(self, key: str, value: float, ttl: int) -> None:
        with self._lock:
            self._values[key] = (value, time.time() + ttl)

    def ttl(self, key: str) -> int:
        with self._lock:
            item = self._live(key, time.time())
        return max(0, math.ceil(item[1] - time.time())) if item else 0

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)


class RedisCounters:
    """Counters shared by every process through Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis_lib.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix

    def incr(self, key: str, ttl: int) -> int:
        pipe = self.redis.pipeline()
        pipe.incr(self.prefix + key)
        pipe.expire(self.prefix + key, ttl, nx=True)
        return int(pipe.execute()[0])

    def get(self, key: str) -> float | None:
        value = self.redis.get(self.prefix + key)
        return float(value) if value is not None else None  # type: ignore[arg-type]

    def put(self, key: str, value: float, ttl: int) -> None:
        self.redis.set(self.prefix + key, repr(value), ex=ttl)

    def ttl(self, key: str) -> int:
        return max(0, int(self.redis.ttl(self.prefix + key)))  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        self.redis.delete(self.prefix + key)


class LoginThrottle:
    """Decides whether a sign-in attempt may proceed, and records its outcome."""

    def __init__(self, store: CounterStore) -> None:
        self.store = store

    def wait_seconds(self, address: str, username: str) -> int:
        """0 when this address may try this (normalised) username now, else seconds to wait."""
        if (self.store.get(f"ip:{address}") or 0) >= IP_FAILURES:
            return max(1, self.store.ttl(f"ip:{address}"))
        failures = int(self.store.get(f"user:{username}") or 0)
        last = self.store.get(f"pair:{username}:{address}")
        if last is None or failures < ACCOUNT_FREE_FAILURES:
            return 0
        delay = min(2 ** (failures - ACCOUNT_FREE_FAILURES + 1), MAX_DELAY_SECONDS)
        remaining = last + delay - time.time()
        return math.ceil(remaining) if remaining > 0 else 0

    def failed(self, address: str, username: str) -> None:
        """Count a failed attempt against the address and the account."""
        self.store.incr(f"ip:{address}", WINDOW_SECONDS)
        self.store.incr(f"user:{username}", WINDOW_SECONDS)
        self.store.put(f"pair:{username}:{address}", time.time(), WINDOW_SECONDS)

    def succeeded(self, address: str, username: str) -> None:
        """A correct password: the account's count starts again."""
        self.store.delete(f"user:{username}")
        self.store.delete(f"pair:{username}:{address}")
