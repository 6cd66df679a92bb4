"""The per-provider rate limit is shared by every worker through the real Redis."""

from __future__ import annotations

import time
import uuid

from govconnect.notices.providers import ProviderRateLimiter
from govconnect.settings import Settings


async def test_two_workers_share_one_provider_rate(redis_url: str) -> None:
    settings = Settings(
        secret_key="test-secret-key-0123456789",  # noqa: S106
        redis_url=redis_url,
        notices={"rate_per_second": {"wechat_mp": 50}},  # type: ignore[arg-type]
    )
    prefix = f"gc-test-rate-{uuid.uuid4().hex[:8]}"
    first, second = ProviderRateLimiter(settings, prefix), ProviderRateLimiter(settings, prefix)
    assert first.fits("wechat_mp", 50) and not first.fits("wechat_mp", 51) and first.fits("aliyun_sms", 10**6)
    started = time.monotonic()
    assert await first.acquire("wechat_mp", 45)  # one job's whole share at once
    assert not await second.acquire("wechat_mp", 45, max_wait=0.1)  # the other worker sees it used
    assert await second.acquire("wechat_mp", 45, max_wait=5.0)  # and gets its turn as the window moves
    assert time.monotonic() - started > 0.5
    other = ProviderRateLimiter(settings, f"{prefix}-other")
    assert await other.acquire("wechat_mp", 45, max_wait=0.1)  # another deployment's key is its own
