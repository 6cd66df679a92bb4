"""Glue from `Settings` to provider adapters: which provider serves which channel, and rate limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from limits import RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from channels.base import Channel, InboundReply, Receipt
from channels.catalogue import CHANNEL_PROVIDERS
from govconnect.jobs import process_state
from govconnect.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("govconnect.notices")


def channel_providers(settings: Settings) -> dict[str, list[str]]:
    """The providers serving each channel, in order of preference (SMS's order is a setting: it fails over)."""
    routes = {channel: list(providers) for channel, providers in CHANNEL_PROVIDERS.items()}
    routes["sms"] = list(settings.notices.sms_providers)
    return routes


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


def build_providers(settings: Settings, engine: Engine | None = None, redis: Any = None) -> ProviderSet:
    """Adapters for every provider the settings configure; CMPP only when its link is configured."""
    from channels.registry import PROVIDERS
    from govconnect.providers.channel_factory import build_channel, provider_http_client

    client = provider_http_client(settings.provider_proxy or None)
    adapters: dict[str, Channel] = {
        name: build_channel(name, settings, client, redis) for name in PROVIDERS if name != "cmpp"
    }
    if redis is None:
        # One token cache per provider set: a process-wide cache would bind its lock to another event loop.
        from channels.dingtalk import Dingtalk
        from channels.tokens import MemoryTokenStore
        from channels.wechat_mp import WechatMp
        from channels.wecom import Wecom
        from govconnect.providers.channel_factory import config_for

        store = MemoryTokenStore()
        adapters["wechat_mp"] = WechatMp(config_for("wechat_mp", settings), client, store)
        adapters["wecom"] = Wecom(config_for("wecom", settings), client, store)
        adapters["dingtalk"] = Dingtalk(config_for("dingtalk", settings), client, store)
    if settings.cmpp.source_addr and "cmpp" in settings.notices.sms_providers:
        adapters["cmpp"] = _build_cmpp(settings, engine)
    return ProviderSet(adapters, channel_providers(settings), closers=[client.aclose])


def _build_cmpp(settings: Settings, engine: Engine | None) -> Channel:
    """The CMPP link, its receipts and replies wired to the pipeline."""
    from channels.cmpp import CmppChannel
    from govconnect.providers.channel_factory import config_for

    config = config_for("cmpp", settings)

    async def on_receipt(receipt: Receipt) -> None:
        if engine is not None:
            await asyncio.to_thread(_apply_receipt, engine, receipt)

    secret = settings.secret_key.get_secret_value()

    async def on_reply(reply: InboundReply) -> None:
        if engine is not None:
            await asyncio.to_thread(_apply_reply, engine, reply, secret)

    return CmppChannel(config, on_receipt=on_receipt, on_reply=on_reply)


def _apply_receipt(engine: Engine, receipt: Receipt) -> None:
    # The status change and the agency's status event (sent by the sweeper: no queue at hand here).
    # Without the event, SMS that failed over to CMPP never reached the agency (bench/chaos.py found it).
    from govconnect.clock import utcnow
    from govconnect.notices.agency_callbacks import owe_status_events
    from govconnect.notices.receipts import apply_receipts

    outcome = apply_receipts(engine, [receipt])
    owe_status_events(engine, outcome.changed, utcnow())


def _apply_reply(engine: Engine, reply: InboundReply, secret: str) -> None:
    # An opt-out leaves; any other reply is stored and its agency callback owed (the sweeper sends it).
    from govconnect.notices.replies import store_replies

    store_replies(engine, [reply], secret)


def _sync_redis(ctx: dict[str, Any]) -> Any:
    """The arq worker's Redis client (shared WeChat/WeCom tokens), None in embedded mode."""
    return ctx.get("redis")


def get_providers(ctx: dict[str, Any]) -> ProviderSet:
    """The ProviderSet of this worker context, built from settings on first use."""
    providers = ctx.get("providers") or process_state(ctx).get("providers")
    if providers is None:
        providers = build_providers(ctx["settings"], ctx.get("engine"), _sync_redis(ctx))
        process_state(ctx)["providers"] = providers
    return providers


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

    def fits(self, provider: str, cost: int) -> bool:
        """Whether `cost` messages fit in one second's allowance of the provider (or it has no limit)."""
        rate = self.rates.get(provider)
        return not rate or cost <= rate

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
    limiter = process_state(ctx).get("rate_limiter")
    if limiter is None:
        limiter = ProviderRateLimiter(ctx["settings"])
        process_state(ctx)["rate_limiter"] = limiter
    return limiter
