"""The small contract every provider adapter follows.

An adapter takes plain `OutboundMessage`s and returns one `SendResult` per message with a
canonical outcome: accepted (with the provider's id), retryable (with Retry-After when the
provider gave one) or permanent (with the provider's code and reason). Our delivery id travels
as the provider's reference (`OutId`, client msg id) so receipts can be matched.
Adapters never log phone numbers or message bodies.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, ClassVar

from prometheus_client import Counter, Histogram

#: China Standard Time (UTC+8, no daylight saving): the one definition every package uses.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

log = logging.getLogger("channels")

PROVIDER_SENDS = Counter(
    "govconnect_provider_sends_total", "Messages handed to providers by outcome", ["channel", "provider", "outcome"]
)
PROVIDER_LATENCY = Histogram(
    "govconnect_provider_request_seconds",
    "Provider call latency",
    ["channel", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class Outcome(StrEnum):
    """Canonical result of handing one message to a provider."""

    ACCEPTED = "accepted"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class MessageKind(StrEnum):
    """Why a message is sent; SMS text rules depend on it (opt-out hint only for subscriptions)."""

    SUBSCRIPTION = "subscription"
    STAFF = "staff"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient (or, for Weibo, to the public timeline)."""

    reference: str
    recipient: str
    text: str
    title: str = ""
    url: str | None = None
    template_params: dict[str, str] = field(default_factory=dict)
    kind: MessageKind = MessageKind.SUBSCRIPTION
    # The sender's identity where the provider takes one per message ('' = the adapter's configured
    # default): the SMS signature (【…】), and the provider template (Alibaba SMS TemplateCode,
    # WeChat template_id, Alibaba voice TtsCode) that `template_params` fill.
    sign_name: str = ""
    template_code: str = ""


@dataclass(frozen=True)
class SendResult:
    """What became of one message."""

    reference: str
    outcome: Outcome
    provider_id: str | None = None
    code: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    parts: int = 1

    @classmethod
    def accepted(cls, reference: str, provider_id: str | None, parts: int = 1) -> SendResult:
        """The provider took the message."""
        return cls(reference, Outcome.ACCEPTED, provider_id=provider_id, parts=parts)

    @classmethod
    def retryable(cls, reference: str, code: str, reason: str = "", retry_after: float | None = None) -> SendResult:
        """A temporary failure: try again later (after `retry_after` seconds when given)."""
        return cls(reference, Outcome.RETRYABLE, code=code, reason=reason, retry_after=retry_after)

    @classmethod
    def permanent(cls, reference: str, code: str, reason: str = "") -> SendResult:
        """A failure that retrying cannot fix."""
        return cls(reference, Outcome.PERMANENT, code=code, reason=reason)


class ProviderError(Exception):
    """Raised inside an adapter when a whole request failed; `Channel.send` turns it into results."""

    outcome: ClassVar[Outcome] = Outcome.RETRYABLE

    def __init__(self, code: str, reason: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


class RetryableError(ProviderError):
    """A temporary failure of the whole request (5xx, 429, timeout, connection reset)."""

    outcome = Outcome.RETRYABLE


class PermanentError(ProviderError):
    """A failure of the whole request that retrying cannot fix (bad signature, bad template)."""

    outcome = Outcome.PERMANENT


@dataclass(frozen=True)
class Receipt:
    """A provider's status report for one message, matched by our reference."""

    reference: str | None
    provider_id: str | None
    delivered: bool
    code: str = ""
    reason: str = ""
    occurred_at: datetime | None = None
    provider: str = ""
    # Set when one provider request carried several recipients under one reference (Alibaba SendSms).
    recipient: str | None = None


@dataclass(frozen=True)
class InboundReply:
    """A message a person sent back (an SMS reply such as `TD`)."""

    sender: str
    text: str
    provider: str
    received_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(ABC):
    """Base adapter: timing, logging and metrics around a provider-specific `_send`."""

    channel: ClassVar[str] = ""
    provider: ClassVar[str] = ""
    max_batch: ClassVar[int] = 1

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send a batch (at most `max_batch`) and classify each message's outcome."""
        if not messages:
            return []
        if len(messages) > self.max_batch:
            raise ValueError(f"{self.provider} takes at most {self.max_batch} messages per call")
        start = time.perf_counter()
        try:
            results = await self._send(messages)
        except ProviderError as exc:
            results = [
                SendResult(m.reference, exc.outcome, code=exc.code, reason=exc.reason, retry_after=exc.retry_after)
                for m in messages
            ]
        finally:
            PROVIDER_LATENCY.labels(self.channel, self.provider).observe(time.perf_counter() - start)
        for result in results:
            PROVIDER_SENDS.labels(self.channel, self.provider, result.outcome.value).inc()
        log.info(
            "%s/%s sent batch of %d: %s",
            self.channel,
            self.provider,
            len(messages),
            ",".join(f"{r.reference}={r.outcome.value}{':' + r.code if r.code else ''}" for r in results),
        )
        return results

    @abstractmethod
    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Provider-specific sending; raise RetryableError/PermanentError for whole-request failures."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections the adapter owns (CMPP link, for instance)."""
