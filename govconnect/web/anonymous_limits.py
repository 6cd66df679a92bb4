"""Per-address request limits on anonymous endpoints: public pages, feeds, the TV page, directory search.

Callers with an API key (their own per-key limit applies) or a signed-in staff session are not
counted. Storage is Redis when configured (every `serve` process shares the count), else memory.
Over the limit: 429 with `Retry-After` in the one JSON error shape.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from govconnect.errors import error_response
from govconnect.settings import Settings

LIMITED_PREFIXES = ("/m/", "/tv/", "/feeds/", "/api/v1/contacts", "/api/v1/departments")


class AnonymousRateLimitMiddleware:
    """Counts anonymous requests per client address (sits inside the staff-session loader)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.item: RateLimitItem = parse(settings.anonymous_rate_limit)
        storage: Storage = MemoryStorage()
        if settings.redis_url:
            storage = RedisStorage(
                "async+" + settings.redis_url, implementation="redispy", key_prefix=f"{settings.queue_name}:anon"
            )
        self.limiter = MovingWindowRateLimiter(storage)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._counted(scope):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("-", 0))[0]
        if not await self.limiter.hit(self.item, "anonymous", address):
            stats = await self.limiter.get_window_stats(self.item, "anonymous", address)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            await error_response(429, "rate_limited", headers={"Retry-After": str(retry_after)})(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _counted(scope: Scope) -> bool:
        path: str = scope["path"]
        if not path.startswith(LIMITED_PREFIXES) and path != "/":
            return False
        if any(name == b"authorization" for name, _ in scope.get("headers") or ()):
            return False  # an API key: the per-key limit applies (a bad key is a 401 anyway)
        return scope.get("state", {}).get("staff_user") is None
