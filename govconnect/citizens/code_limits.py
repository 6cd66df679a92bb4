"""How many verification codes a number and a client address may ask for.

Each number gets its own budget (by default 1 a minute, 5 an hour, 10 a day): a code costs an SMS
and nobody needs more. A client address gets a looser one (20 in 10 minutes): a carrier NAT puts
many citizens behind one address, and each of them must still get a code. Moving windows from the
`limits` library, in Redis when configured (every `serve` process shares them), else in memory;
numbers and addresses enter the keys only as keyed hashes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from govconnect.errors import RateLimited
from govconnect.settings import Settings


@dataclass(frozen=True)
class _Budget:
    kind: str  # "number" or "address"
    item: RateLimitItem


class CodeBudget:
    """Codes per number and per client address; `take` counts one or refuses without counting."""

    def __init__(
        self, per_number: str, per_address: str, storage_uri: str = "memory://", key_prefix: str = "govconnect:codes"
    ) -> None:
        self.budgets = [_Budget("number", item) for item in parse_many(per_number)] + [
            _Budget("address", item) for item in parse_many(per_address)
        ]
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, key_prefix=key_prefix))

    @classmethod
    def from_settings(cls, settings: Settings) -> CodeBudget:
        """The configured budgets, in Redis when the deployment has one."""
        return cls(
            settings.code_limit_per_number,
            settings.code_limit_per_address,
            settings.redis_url or "memory://",
            key_prefix=f"{settings.queue_name}:codes",
        )

    def take(self, number_key: str, address_key: str) -> None:
        """Count one code for this number (hash) and address (hash), or raise RateLimited and count nothing."""
        keys = {"number": number_key, "address": address_key}
        for budget in self.budgets:
            if not self.limiter.test(budget.item, "code", budget.kind, keys[budget.kind]):
                stats = self.limiter.get_window_stats(budget.item, "code", budget.kind, keys[budget.kind])
                raise _refusal(budget, max(1, math.ceil(stats.reset_time - time.time())))
        for budget in self.budgets:
            self.limiter.hit(budget.item, "code", budget.kind, keys[budget.kind])


def _refusal(budget: _Budget, wait: int) -> RateLimited:
    if budget.kind == "address":
        return RateLimited(
            "code_address_limit",
            f"当前网络获取验证码过于频繁，请 {_in_words(wait)}后再试 / too many codes from this network, retry later",
            wait,
        )
    if budget.item.get_expiry() <= 60:
        return RateLimited("code_too_soon", f"验证码发送过于频繁，请 {wait} 秒后再试 / wait before asking again", wait)
    return RateLimited(
        "code_number_limit",
        f"该号码获取验证码次数过多，请 {_in_words(wait)}后再试 / too many codes for this number, retry later",
        wait,
    )


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} 秒"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} 分钟"
    return f"{math.ceil(seconds / 3600)} 小时"
