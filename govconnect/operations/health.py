"""Provider health shared by every worker: per-minute call statistics and a circuit per provider.

A provider whose calls keep failing (timeouts, connection errors, 5xx: the provider did not
answer) opens its circuit: sends to it pause, SMS goes to the other SMS provider, and after a
cool-down exactly one worker may send one message as a probe. A probe that gets an answer
closes the circuit; a failed one opens it again. State lives in Redis when configured (every
worker and `serve` sees the same), else in this process (embedded mode has one process).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from channels.base import Outcome, SendResult
from govconnect.jobs import process_state
from govconnect.settings import Settings

STATS_TTL_SECONDS = 2 * 3600
# Retryable codes that are our own doing, not the provider failing.
NOT_PROVIDER_FAULTS = frozenset({"rate_limited", "rate_limit_local", "circuit_open", "adapter_error", "no_result"})
CLOSED, OPEN, PROBE = "closed", "open", "probe"
PROVIDER_MESSAGES = Counter(
    "govconnect_provider_messages_total",
    "Messages handed to a provider, by what became of them (answered, fault, limited)",
    ["provider", "result"],
)
CIRCUIT_OPEN = Gauge(
    "govconnect_provider_circuit_open", "1 while this process saw the provider's circuit open", ["provider"]
)


class HealthStore(Protocol):
    """The few key-value operations health needs (Redis hashes, or dicts in memory)."""

    async def hincr(self, key: str, fields: dict[str, float], ttl: int | None = None) -> None: ...
    async def hgetall(self, key: str) -> dict[str, str]: ...
    async def hset(self, key: str, fields: dict[str, str]) -> None: ...
    async def set_once(self, key: str, ttl_seconds: float) -> bool: ...
    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]: ...


class MemoryHealthStore:
    """Health state of this process only (embedded mode)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = defaultdict(dict)
        self.locks: dict[str, float] = {}

    async def hincr(self, key: str, fields: dict[str, float], ttl: int | None = None) -> None:
        """Add to numeric fields of a hash."""
        target = self.hashes[key]
        for name, amount in fields.items():
            target[name] = str(float(target.get(name, 0)) + amount)

    async def hgetall(self, key: str) -> dict[str, str]:
        """A hash's fields."""
        return dict(self.hashes.get(key, {}))

    async def hset(self, key: str, fields: dict[str, str]) -> None:
        """Set fields of a hash."""
        self.hashes[key].update(fields)

    async def set_once(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller until the key expires."""
        now = time.monotonic()
        if self.locks.get(key, 0.0) > now:
            return False
        self.locks[key] = now + ttl_seconds
        return True

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """Several hashes at once."""
        return [dict(self.hashes.get(key, {})) for key in keys]


class RedisHealthStore:
    """Health state in Redis, shared by every process."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def hincr(self, key: str, fields: dict[str, float], ttl: int | None = None) -> None:
        """Add to numeric fields of a hash (and set its expiry)."""
        pipe = self.client.pipeline(transaction=False)
        for name, amount in fields.items():
            pipe.hincrbyfloat(self.prefix + key, name, amount)
        if ttl:
            pipe.expire(self.prefix + key, ttl)
        await pipe.execute()

    async def hgetall(self, key: str) -> dict[str, str]:
        """A hash's fields."""
        return _decode(await self.client.hgetall(self.prefix + key))

    async def hset(self, key: str, fields: dict[str, str]) -> None:
        """Set fields of a hash."""
        await self.client.hset(self.prefix + key, mapping=fields)

    async def set_once(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller (any process) until the key expires."""
        return bool(await self.client.set(self.prefix + key, "1", nx=True, px=max(1, int(ttl_seconds * 1000))))

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """Several hashes in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self.prefix + key)
        return [_decode(raw) for raw in await pipe.execute()]


def _decode(raw: dict[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
        for k, v in raw.items()
    }


@dataclass(frozen=True)
class CircuitState:
    """A provider's circuit as callers see it."""

    state: str  # closed, open, or probe (this caller may send one probe message)
    retry_after: float = 0.0


def is_provider_fault(result: SendResult) -> bool:
    """The provider gave no usable answer (timeout, connection error, 5xx, 429 from it)."""
    return result.outcome is Outcome.RETRYABLE and (result.code or "") not in NOT_PROVIDER_FAULTS


class ProviderHealth:
    """Statistics and circuits for every provider."""

    def __init__(self, store: HealthStore, failures_to_open: int, cooldown_seconds: float) -> None:
        self.store = store
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown_seconds

    async def circuit(self, provider: str, now: float | None = None) -> CircuitState:
        """Closed, open (with seconds until a probe may go), or probe (the caller was given the probe)."""
        now = now or time.time()
        fields = await self.store.hgetall(f"circuit:{provider}")
        opened_until = float(fields.get("opened_until", 0) or 0)
        if fields.get("state", CLOSED) != OPEN:
            return CircuitState(CLOSED)
        if now < opened_until:
            return CircuitState(OPEN, opened_until - now)
        if await self.store.set_once(f"probe:{provider}", self.cooldown):
            return CircuitState(PROBE)
        return CircuitState(OPEN, self.cooldown)

    async def record(self, provider: str, results: Sequence[SendResult], calls: int, seconds: float) -> None:
        """Count one job's calls to a provider and move its circuit on."""
        faults = sum(1 for r in results if is_provider_fault(r))
        limited = sum(1 for r in results if (r.code or "") in ("rate_limited", "rate_limit_local"))
        answered = len(results) - faults - limited
        for result, count in (("answered", answered), ("fault", faults), ("limited", limited)):
            if count:
                PROVIDER_MESSAGES.labels(provider, result).inc(count)
        minute = int(time.time() // 60)
        await self.store.hincr(
            f"stats:{provider}:{minute}",
            {
                "messages": len(results),
                "answered": answered,
                "faults": faults,
                "limited": limited,
                "calls": calls,
                "seconds": seconds,
            },
            ttl=STATS_TTL_SECONDS,
        )
        if answered:
            await self._close(provider)
        elif faults:
            await self._failed(provider)

    async def _close(self, provider: str) -> None:
        fields = await self.store.hgetall(f"circuit:{provider}")
        CIRCUIT_OPEN.labels(provider).set(0)
        if fields.get("state") == OPEN or float(fields.get("failures", 0) or 0):
            await self.store.hset(
                f"circuit:{provider}",
                {"state": CLOSED, "failures": "0", "opened_until": "0", "changed_at": str(time.time())},
            )

    async def _failed(self, provider: str) -> None:
        await self.store.hincr(f"circuit:{provider}", {"failures": 1})
        fields = await self.store.hgetall(f"circuit:{provider}")
        if float(fields.get("failures", 0) or 0) >= self.failures_to_open:
            reopened = fields.get("state") == OPEN
            CIRCUIT_OPEN.labels(provider).set(1)
            await self.store.hset(
                f"circuit:{provider}",
                {
                    "state": OPEN,
                    "opened_until": str(time.time() + self.cooldown),
                    "changed_at": fields.get("changed_at", "0") if reopened else str(time.time()),
                },
            )

    async def snapshot(self, providers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per provider: circuit, and calls over the last 5 and 60 minutes (for /status)."""
        minute = int(time.time() // 60)
        out: dict[str, dict[str, Any]] = {}
        for provider in providers:
            buckets = await self.store.hgetall_many([f"stats:{provider}:{minute - i}" for i in range(60)])
            circuit = await self.store.hgetall(f"circuit:{provider}")
            windows = {}
            for span in (5, 60):
                total: dict[str, float] = defaultdict(float)
                for bucket in buckets[:span]:
                    for name, value in bucket.items():
                        total[name] += float(value)
                tried = total["answered"] + total["faults"]
                windows[f"{span}m"] = {
                    "messages": int(total["messages"]),
                    "success_rate": round(total["answered"] / tried, 4) if tried else None,
                    "latency_ms": round(1000 * total["seconds"] / total["calls"], 1) if total["calls"] else None,
                    "rate_limited": int(total["limited"]),
                }
            opened_until = float(circuit.get("opened_until", 0) or 0)
            out[provider] = {
                "circuit": circuit.get("state", CLOSED),
                "circuit_failures": int(float(circuit.get("failures", 0) or 0)),
                "circuit_retry_in_seconds": max(0.0, round(opened_until - time.time(), 1))
                if circuit.get("state") == OPEN
                else 0.0,
                **windows,
            }
        return out


def health_for(settings: Settings, redis: Any = None) -> ProviderHealth:
    """Provider health on Redis when a client is given, else in memory."""
    store: HealthStore = (
        RedisHealthStore(redis, f"{settings.queue_name}:health:") if redis is not None else MemoryHealthStore()
    )
    return ProviderHealth(store, settings.monitoring.circuit_failures, settings.monitoring.circuit_cooldown_seconds)


def get_health(ctx: dict[str, Any]) -> ProviderHealth:
    """The provider health of this worker context (one per process)."""
    health = process_state(ctx).get("provider_health")
    if health is None:
        health = health_for(ctx["settings"], ctx.get("redis"))
        process_state(ctx)["provider_health"] = health
    return health
