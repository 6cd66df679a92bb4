"""Glue from `Settings` to provider adapters: which provider serves which channel, and rate limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from channels.base import Channel
from govconnect.settings import Settings

log = logging.getLogger("govconnect.notices")

# Channels that do not go through a provider adapter (publishing handles them).
PUBLISH_ONLY_CHANNELS = ("site", "tv")


def channel_providers(settings: Settings) -> dict[str, list[str]]:
    """The providers serving each channel, in order of preference (SMS fails over to the second)."""
    return {
        "sms": list(settings.notices.sms_providers),
        "voice": ["aliyun_voice"],
        "wechat": ["wechat_mp"],
        "wecom": ["wecom"],
        "weibo": ["weibo"],
    }


@dataclass
class ProviderSet:
    """The adapters this process sends through, keyed by provider name."""

    adapters: dict[str, Channel]
    routes: dict[str, list[str]]
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def providers(self, channel: str) -> list[str]:
        """Configured and available providers for a channel, preferred first."""
        return [p for p in self.routes.get(channel, []) if p in self.adapters]

    def adapter(self, provider: str) -> Channel:
        """The adapter for a provider."""
        return self.adapters[provider]

    async def aclose(self) -> None:
        """Close adapters and the HTTP client."""
        for adapter in self.adapters.values():
            await adapter.aclose()
        for closer in self.closers:
            result = closer()
            if asyncio.iscoroutine(result):
                await result


def build_providers(settings: Settings) -> ProviderSet:
    """Adapters for every provider the settings configure (from `channels.registry`)."""
    import httpx

    try:
        from channels import registry  # type: ignore[attr-defined]
    except ImportError:  # the adapters land from the channels branch
        log.warning("channels.registry not available: no provider adapters configured")
        return ProviderSet({}, channel_providers(settings))
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), limits=httpx.Limits(max_connections=200))
    adapters = registry.build_adapters(settings, client)
    return ProviderSet(dict(adapters), channel_providers(settings), closers=[client.aclose])


def get_providers(ctx: dict[str, Any]) -> ProviderSet:
    """The ProviderSet of this worker context, built from settings on first use."""
    providers = ctx.get("providers")
    if providers is None:
        providers = build_providers(ctx["settings"])
        ctx["providers"] = providers
    return providers  # type: ignore[no-any-return]


class ProviderRateLimiter:
    """A per-provider rate limit shared by every worker (Redis when configured, else this process)."""

    def __init__(self, settings: Settings, key_prefix: str = "govconnect-rate") -> None:
        if settings.redis_url:
            uri = settings.redis_url.replace("redis://", "async+redis://", 1)
            storage = storage_from_string(uri, implementation="redispy", key_prefix=key_prefix)
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.rates = dict(settings.notices.rate_per_second)

    async def acquire(self, provider: str, cost: int = 1, max_wait: float = 30.0) -> bool:
        """Wait until `cost` messages may go to `provider`; False when `max_wait` passed first."""
        rate = self.rates.get(provider)
        if not rate:
            return True
        item = RateLimitItemPerSecond(rate)
        cost = min(cost, rate)
        deadline = time.monotonic() + max_wait
        while True:
            if await self.limiter.hit(item, provider, cost=cost):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02 + 0.05 * cost / rate)


def get_rate_limiter(ctx: dict[str, Any]) -> ProviderRateLimiter:
    """The rate limiter of this worker context."""
    limiter = ctx.get("rate_limiter")
    if limiter is None:
        limiter = ProviderRateLimiter(ctx["settings"])
        ctx["rate_limiter"] = limiter
    return limiter  # type: ignore[no-any-return]
