"""Alibaba Cloud voice adapter against the sandbox."""

from __future__ import annotations

import httpx
import pytest

from channels.aliyun_voice import AliyunVoice, CalleeLimiter, parse_voice_report
from channels.base import OutboundMessage, Outcome
from tests.channels.conftest import Sandbox, voice_config


def call(ref: str, callee: str = "13800138002") -> OutboundMessage:
    return OutboundMessage(reference=ref, recipient=callee, text="衢州市气象台发布暴雨红色预警，请立即避险。")


async def test_call_accepted_and_report_pushed(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [result] = await AliyunVoice(voice_config(sandbox), client).send([call("v1")])
    assert result.outcome is Outcome.ACCEPTED and result.provider_id
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_voice/report")
    [receipt] = parse_voice_report(push["body"])
    assert (receipt.reference, receipt.provider_id, receipt.delivered, receipt.code) == (
        "v1",
        result.provider_id,
        True,
        "ANSWERED",
    )
    found = await sandbox.get("/_sandbox/messages", provider="aliyun_voice", reference="v1")
    assert "暴雨红色预警" in found["messages"][0]["text"]


async def test_unanswered_call_reports_failure(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await AliyunVoice(voice_config(sandbox), client).send([call("v2", "13800000000")])
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_voice/report")
    [receipt] = parse_voice_report(push["body"])
    assert not receipt.delivered and receipt.code == "NOANSWER"


async def test_per_callee_limit_defers_the_call(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    """A second call to one person within a minute waits for the window: a limit on when, not whether."""
    voice = AliyunVoice(voice_config(sandbox), client)
    [first] = await voice.send([call("v3")])
    [local] = await voice.send([call("v4")])  # the adapter's own window refuses without a request
    assert first.outcome is Outcome.ACCEPTED
    assert (local.outcome, local.code) == (Outcome.RETRYABLE, "isv.BUSINESS_LIMIT_CONTROL")
    assert local.retry_after is not None and 55 < local.retry_after <= 60  # until the minute is over
    # Another process (a fresh limiter) reaches the provider, which refuses alike: retry in a minute.
    [remote] = await AliyunVoice(voice_config(sandbox), client).send([call("v5")])
    assert (remote.outcome, remote.code, remote.retry_after) == (Outcome.RETRYABLE, "isv.BUSINESS_LIMIT_CONTROL", 60)
    assert (await sandbox.get("/_sandbox/counts"))["accepted"]["aliyun_voice"] == 1


def test_callee_limiter_windows() -> None:
    limiter = CalleeLimiter()
    t = 1000.0
    allowed = [limiter.allow("c", t + i * 61) for i in range(7)]
    assert allowed == [True, True, True, True, True, False, False]  # 5 an hour
    assert limiter.allow("c", t + 3601)  # the first call left the hour window
    assert limiter.allow("other", t)
    # `reserve` says how long until the fullest window has room (0: the call is recorded).
    assert limiter.reserve("d", t) == 0
    assert limiter.reserve("d", t + 20) == 40  # 1 a minute
    assert limiter.reserve("d", t + 60) == 0


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        ({"kind": "http_5xx"}, Outcome.RETRYABLE, "http_503"),
        ({"kind": "rate_limit", "retry_after": 2}, Outcome.RETRYABLE, "http_429"),
        ({"kind": "error", "code": "isv.OUT_OF_SERVICE"}, Outcome.RETRYABLE, "isv.OUT_OF_SERVICE"),
        ({"kind": "error", "code": "isv.TTS_TEMPLATE_ILLEGAL"}, Outcome.PERMANENT, "isv.TTS_TEMPLATE_ILLEGAL"),
        ({"kind": "error", "code": "SignatureDoesNotMatch"}, Outcome.PERMANENT, "SignatureDoesNotMatch"),
    ],
)
async def test_voice_faults(
    sandbox: Sandbox, client: httpx.AsyncClient, fault: dict[str, object], outcome: Outcome, code: str
) -> None:
    await sandbox.fault("aliyun_voice", count=1, **fault)  # type: ignore[arg-type]
    [result] = await AliyunVoice(voice_config(sandbox), client).send([call("vf")])
    assert (result.outcome, result.code) == (outcome, code)


async def test_wrong_secret_rejected(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [result] = await AliyunVoice(voice_config(sandbox, access_key_secret="nope"), client).send([call("vs")])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "SignatureDoesNotMatch")
