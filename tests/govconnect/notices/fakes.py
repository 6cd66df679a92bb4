"""A small scripted Channel for unit tests of pipeline logic (end-to-end tests use the sandbox)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import ClassVar

from channels.base import Channel, OutboundMessage, SendResult
from govconnect.notices.providers import ProviderSet

Script = Callable[[OutboundMessage, int], SendResult]


def always_accept(message: OutboundMessage, attempt: int) -> SendResult:
    return SendResult.accepted(message.reference, f"p-{message.reference}")


class ScriptedChannel(Channel):
    """Records every message; the script decides each outcome from (message, attempt number)."""

    channel: ClassVar[str] = "test"
    max_batch: ClassVar[int] = 100

    def __init__(self, provider: str, script: Script = always_accept, max_batch: int = 100) -> None:
        self.provider = provider  # type: ignore[misc]
        self.max_batch = max_batch  # type: ignore[misc]
        self.script = script
        self.sent: list[OutboundMessage] = []
        self.calls = 0
        self.attempts: Counter[str] = Counter()

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        self.calls += 1
        out = []
        for message in messages:
            self.attempts[message.reference] += 1
            self.sent.append(message)
            out.append(self.script(message, self.attempts[message.reference]))
        return out


def provider_set(**adapters: ScriptedChannel) -> ProviderSet:
    """Providers for tests, routed like production (sms → aliyun_sms then cmpp)."""
    routes = {
        "sms": ["aliyun_sms", "cmpp"],
        "voice": ["aliyun_voice"],
        "wechat": ["wechat_mp"],
        "wecom": ["wecom"],
        "weibo": ["weibo"],
    }
    return ProviderSet(dict(adapters), routes)
