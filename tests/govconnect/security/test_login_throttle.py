"""The sign-in throttle on its own, with the in-memory and the Redis counters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from govconnect.web import login_throttle
from govconnect.web.login_throttle import (
    ACCOUNT_FREE_FAILURES,
    IP_FAILURES,
    CounterStore,
    LoginThrottle,
    MemoryCounters,
    RedisCounters,
)


@pytest.fixture(params=["memory", "redis"])
def throttle(request: pytest.FixtureRequest) -> Iterator[LoginThrottle]:
    store: CounterStore
    if request.param == "memory":
        store = MemoryCounters()
    else:
        store = RedisCounters(request.getfixturevalue("redis_url"), f"gc-test:{uuid.uuid4().hex}:login:")
    yield LoginThrottle(store)
    if isinstance(store, RedisCounters):
        for key in store.redis.scan_iter(store.prefix + "*"):
            store.redis.delete(key)
        store.redis.close()


def test_address_cap_covers_every_account(throttle: LoginThrottle) -> None:
    for i in range(IP_FAILURES):
        assert throttle.wait_seconds("198.51.100.7", f"user{i}") == 0
        throttle.failed("198.51.100.7", f"user{i}")
    assert throttle.wait_seconds("198.51.100.7", "someone-else") > 60
    assert throttle.wait_seconds("198.51.100.8", "someone-else") == 0


def test_account_delay_grows_and_spares_clean_addresses(
    throttle: LoginThrottle, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(login_throttle.time, "time", lambda: now[0])
    for _ in range(ACCOUNT_FREE_FAILURES):
        assert throttle.wait_seconds("203.0.113.1", "wangli") == 0
        throttle.failed("203.0.113.1", "wangli")
    assert throttle.wait_seconds("203.0.113.1", "wangli") == 2
    assert throttle.wait_seconds("203.0.113.99", "wangli") == 0  # the real user elsewhere
    now[0] += 2
    assert throttle.wait_seconds("203.0.113.1", "wangli") == 0
    throttle.failed("203.0.113.1", "wangli")
    assert throttle.wait_seconds("203.0.113.1", "wangli") == 4
    for _ in range(10):
        throttle.failed("203.0.113.1", "wangli")
    assert throttle.wait_seconds("203.0.113.1", "wangli") == 60  # capped: slowed, never locked for long
    throttle.succeeded("203.0.113.99", "wangli")
    assert throttle.wait_seconds("203.0.113.1", "wangli") == 0
