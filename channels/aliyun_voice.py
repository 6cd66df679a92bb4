"""Alibaba Cloud voice (dyvmsapi 2017-05-25): SingleCallByTts, ClickToDial / CancelCall, VoiceReport pushes.

Click-to-dial (双呼, help.aliyun.com/document_detail/147561 and the ClickToDial API reference):
the platform calls `CallerNumber` first, showing `CallerShowNumber`; when that leg answers it
calls `CalledNumber`, showing `CalledShowNumber`, and bridges the two, so neither side sees the
other's mobile. The answer carries a `CallId` ("118720797955^10551795xx"); `CancelCall` by
`CallId` stops a call still ringing; the outcome arrives as a VoiceReport item with our `OutId`.

The provider allows each callee at most 1 call a minute, 5 an hour and 20 a day. The adapter
keeps the same windows locally so it does not spend a request it knows will fail. Either refusal
(code `isv.BUSINESS_LIMIT_CONTROL`) is a limit on when, not whether: the call is retryable, after
the wait the local windows compute (or a minute, the shortest window, when the provider refused).
A call whose wait runs past the delivery's deadline fails then (`deadline_exceeded`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from channels import aliyun_rpc
from channels.aliyun_sms import _load_array, parse_china_time
from channels.base import Channel, OutboundMessage, PermanentError, Receipt, RetryableError, SendResult
from channels.shared_windows import RedisCalleeLimiter, maybe_await

# (window seconds, calls allowed) per callee, as the provider documents.
CALLEE_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 1), (3600.0, 5), (86400.0, 20))
LIMIT_CODE = "isv.BUSINESS_LIMIT_CONTROL"
ANSWERED = "200000"

LIMIT_RETRY_AFTER = min(window for window, _ in CALLEE_LIMITS)

PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.CALLED_NUMBER_ILLEGAL",
        "isv.CALLEDSHOWNUMBER_ILLEGAL",
        "isv.TTS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.ACCOUNT_ABNORMAL",
        "isv.PRODUCT_UN_SUBSCRIPT",
    }
)
RETRYABLE_AFTER: dict[str, float] = {
    LIMIT_CODE: LIMIT_RETRY_AFTER,
    "isv.OUT_OF_SERVICE": 600.0,
    "isv.AMOUNT_NOT_ENOUGH": 600.0,
}


@dataclass(frozen=True)
class AliyunVoiceConfig:
    """Where and as whom to call dyvmsapi."""

    base_url: str
    access_key_id: str
    access_key_secret: str
    show_number: str
    tts_code: str
    play_times: int = 2
    template_param_name: str = "content"


class CalleeLimiter:
    """Sliding windows of recent calls per callee (1/min, 5/h, 20/day), in this process."""

    def __init__(self, limits: tuple[tuple[float, int], ...] = CALLEE_LIMITS) -> None:
        self.limits = limits
        self._calls: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, callee: str, now: float | None = None) -> bool:
        """Record a call and return True when every window has room; False (not recorded) otherwise."""
        return self.reserve(callee, now) == 0

    def reserve(self, callee: str, now: float | None = None) -> float:
        """Record a call and return 0 when every window has room; else the seconds until they all do."""
        now = time.monotonic() if now is None else now
        calls = self._calls[callee]
        longest = max((window for window, _ in self.limits), default=0.0)
        while calls and now - calls[0] >= longest:
            calls.popleft()
        wait = 0.0
        for window, allowed in self.limits:
            recent = [t for t in calls if now - t < window]
            if len(recent) >= allowed:
                wait = max(wait, recent[len(recent) - allowed] + window - now)
        if wait > 0:
            return wait
        calls.append(now)
        return 0.0


class AliyunVoice(Channel):
    """Voice notification calls through the Alibaba Cloud voice API."""

    channel = "voice"
    provider = "aliyun_voice"
    max_batch = 1

    def __init__(
        self,
        config: AliyunVoiceConfig,
        client: httpx.AsyncClient,
        limiter: CalleeLimiter | RedisCalleeLimiter | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.limiter = limiter or CalleeLimiter()

    async def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        (message,) = messages
        wait: float = await maybe_await(self.limiter.reserve(message.recipient))
        if wait > 0:
            return [SendResult.retryable(message.reference, LIMIT_CODE, "callee limit reached (local)", wait)]
        params = message.template_params or {self.config.template_param_name: message.text}
        answer, retry_after = await aliyun_rpc.call(
            self.client,
            self.config.base_url,
            "SingleCallByTts",
            {
                "CalledShowNumber": self.config.show_number,
                "CalledNumber": message.recipient,
                "TtsCode": message.template_code or self.config.tts_code,
                "TtsParam": json.dumps(params, ensure_ascii=False),
                "PlayTimes": str(self.config.play_times),
                "OutId": message.reference,
            },
            access_key_id=self.config.access_key_id,
            secret=self.config.access_key_secret,
        )
        code = str(answer.get("Code", ""))
        reason = str(answer.get("Message", ""))
        if code == "OK":
            call_id = str(answer.get("CallId") or "")
            if not call_id:
                raise RetryableError("no_call_id", "OK without CallId")
            return [SendResult.accepted(message.reference, call_id)]
        aliyun_rpc.raise_for_common(code, reason, retry_after)
        if code in RETRYABLE_AFTER:
            return [SendResult.retryable(message.reference, code, reason, retry_after or RETRYABLE_AFTER[code])]
        if code in PERMANENT or code.startswith("isv."):
            return [SendResult.permanent(message.reference, code, reason)]
        return [SendResult.retryable(message.reference, code, reason, retry_after)]


# VoiceReport `smart_status_code` → the call's state (answered, busy, no_answer; anything else failed).
CALL_STATES = {"ANSWERED": "answered", "BUSY": "busy", "NOANSWER": "no_answer", "CANCELLED": "cancelled"}
# OutId prefix of click-to-dial calls: their reports are calls, not deliveries (whose ids are 32 hex digits).
DIAL_PREFIX = "dial_"


@dataclass(frozen=True)
class CallReport:
    """The outcome of one click-to-dial call, from its VoiceReport item."""

    call_id: str
    out_id: str
    state: str  # answered, busy, no_answer, cancelled, failed
    code: str
    leg: str  # which leg ended an unanswered call: "caller" (our staff) or "callee"; "" when answered
    duration: int


async def click_to_dial(
    client: httpx.AsyncClient,
    config: AliyunVoiceConfig,
    *,
    caller: str,
    called: str,
    out_id: str,
    session_timeout: int = 120,
    record: bool = False,
) -> str:
    """Place a 双呼 call (caller first, then bridged to called; both see `show_number`); its CallId.

    Raises PermanentError for a refusal no retry fixes (bad number, flow control), RetryableError otherwise.
    """
    answer, retry_after = await aliyun_rpc.call(
        client,
        config.base_url,
        "ClickToDial",
        {
            "CallerShowNumber": config.show_number,
            "CallerNumber": caller,
            "CalledShowNumber": config.show_number,
            "CalledNumber": called,
            "SessionTimeout": str(session_timeout),
            "RecordFlag": "true" if record else "false",
            "OutId": out_id,
        },
        access_key_id=config.access_key_id,
        secret=config.access_key_secret,
    )
    code, reason = str(answer.get("Code", "")), str(answer.get("Message", ""))
    if code == "OK":
        call_id = str(answer.get("CallId") or "")
        if not call_id:
            raise RetryableError("no_call_id", "OK without CallId")
        return call_id
    aliyun_rpc.raise_for_common(code, reason, retry_after)
    if code in RETRYABLE_AFTER:
        raise RetryableError(code, reason, retry_after=retry_after or RETRYABLE_AFTER[code])
    raise PermanentError(code, reason)


async def cancel_call(client: httpx.AsyncClient, config: AliyunVoiceConfig, call_id: str) -> bool:
    """CancelCall: True when the provider stopped the call, False when it had already ended or is unknown."""
    answer, retry_after = await aliyun_rpc.call(
        client,
        config.base_url,
        "CancelCall",
        {"CallId": call_id},
        access_key_id=config.access_key_id,
        secret=config.access_key_secret,
    )
    code, reason = str(answer.get("Code", "")), str(answer.get("Message", ""))
    if code != "OK":
        aliyun_rpc.raise_for_common(code, reason, retry_after)
        raise PermanentError(code, reason)
    return answer.get("Status") in (True, "true")


def is_dial_item(item: dict[str, Any]) -> bool:
    """Whether a VoiceReport item reports a click-to-dial call (our OutId says so)."""
    return str(item.get("out_id") or "").startswith(DIAL_PREFIX)


def parse_call_reports(payload: object) -> list[CallReport]:
    """Click-to-dial outcomes among a VoiceReport push's items; raises ValueError on a malformed payload."""
    reports = []
    for item in _load_array(payload):
        if not is_dial_item(item):
            continue
        smart = str(item.get("smart_status_code") or "")
        state = CALL_STATES.get(smart, "answered" if str(item.get("status_code")) == ANSWERED else "failed")
        try:
            duration = int(item.get("duration") or 0)
        except (TypeError, ValueError):
            duration = 0
        reports.append(
            CallReport(
                call_id=str(item.get("call_id") or ""),
                out_id=str(item["out_id"]),
                state=state,
                code=smart or str(item.get("status_code") or ""),
                leg=str(item.get("leg") or ""),
                duration=max(0, duration),
            )
        )
    return reports


def parse_voice_report(payload: object) -> list[Receipt]:
    """Receipts from a VoiceReport push (JSON array); raises ValueError on a malformed payload."""
    receipts = []
    for item in _load_array(payload):
        if is_dial_item(item):
            continue  # a click-to-dial call, not a delivery: parse_call_reports reads it
        if not item.get("call_id") and not item.get("out_id"):
            raise ValueError("report item has neither call_id nor out_id")
        status = str(item.get("status_code") or "")
        receipts.append(
            Receipt(
                reference=str(item.get("out_id") or "") or None,
                provider_id=str(item.get("call_id") or "") or None,
                delivered=status == ANSWERED,
                code=str(item.get("smart_status_code") or status),
                reason=str(item.get("status_msg") or ""),
                occurred_at=parse_china_time(item.get("end_time") or item.get("start_time")),
                provider=AliyunVoice.provider,
                recipient=str(item.get("callee") or "") or None,
            )
        )
    return receipts
