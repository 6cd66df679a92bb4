"""Receipt pulling: SMS whose reports never came are settled by QuerySendDetails before they turn `unknown`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from channels.aliyun_sms import AliyunSms
from channels.sandbox import SandboxConfig, SandboxState, create_sandbox_app
from channels.sandbox.runner import RunningServer, run_in_thread
from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.providers import ProviderSet
from govconnect.notices.receipt_pull import pull_receipts
from govconnect.notices.sweeper import pulls_receipts, sweep
from govconnect.providers.channel_factory import build_channel, provider_http_client
from govconnect.providers.sandbox import point_at_sandbox
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.test_pipeline import deliveries, make_notice

TIMEOUT, PULL_BEFORE = 600.0, 300.0


@pytest.fixture
async def sandbox(ctx: dict[str, Any]) -> AsyncIterator[tuple[SandboxState, RunningServer]]:
    """A sandbox that pushes no report at all (no callback URL), as if every SmsReport push were lost.

    The job context sends SMS through the real Alibaba adapter to it; reports are asked for.
    """
    state = SandboxState(SandboxConfig(report_delay=0.05))
    server = run_in_thread(create_sandbox_app(state=state))
    settings = point_at_sandbox(ctx["settings"], server.url)
    notices = settings.notices.model_copy(
        update={
            "sms_providers": ["aliyun_sms"],
            "receipt_timeout_seconds": TIMEOUT,
            "receipt_pull_before_seconds": PULL_BEFORE,
            "rate_per_second": {"aliyun_sms_query": 5},
        }
    )
    ctx["settings"] = settings.model_copy(update={"notices": notices})
    client = provider_http_client(None)
    ctx["providers"] = ProviderSet(
        {"aliyun_sms": build_channel("aliyun_sms", ctx["settings"], client)}, {"sms": ["aliyun_sms"]}, [client.aclose]
    )
    try:
        yield state, server
    finally:
        await ctx["providers"].aclose()
        server.stop()


async def test_unreported_sms_are_settled_by_query_send_details(
    ctx: dict[str, Any], session: Session, agency: Agency, sandbox: tuple[SandboxState, RunningServer]
) -> None:
    state, server = sandbox
    assert pulls_receipts(ctx["settings"])
    make_subscriber(session, "13800001234", None, channels=["sms"])
    make_subscriber(session, "13800010000", None, channels=["sms"])  # ends in 0000: the carrier fails it
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    rows = {d.recipient: d for d in deliveries(session, notice.id)}
    assert {d.status for d in rows.values()} == {"sent"} and all(d.provider_id for d in rows.values())
    await asyncio.sleep(0.1)  # past the sandbox's report delay: Alibaba knows the outcome now

    sent_at = utcnow()
    # Not yet in the pull window: nothing is asked.
    assert await pull_receipts(ctx, force=True) == {"asked": 0}
    # In the last PULL_BEFORE seconds before the receipt timeout: asked, and settled.
    ctx["clock"] = lambda: sent_at + timedelta(seconds=TIMEOUT - PULL_BEFORE / 2)
    result = await pull_receipts(ctx, force=True)
    assert result == {"asked": 2, "settled": 2, "delivered": 1, "failed": 1}
    rows = {d.recipient: d for d in deliveries(session, notice.id)}
    assert rows["13800001234"].status == "delivered"
    assert (rows["13800010000"].status, rows["13800010000"].error_code) == ("failed", "MK:0001")
    async with httpx.AsyncClient() as c:
        counts = (await c.get(f"{server.url}/_sandbox/counts")).json()
    assert counts["requests"]["aliyun_sms:status"] == 2  # one QuerySendDetails per delivery
    # The sweeper past the timeout finds nothing left to give up on.
    ctx["clock"] = lambda: sent_at + timedelta(seconds=TIMEOUT + 60)
    swept = await sweep(ctx)
    assert swept["expired"] == 0
    assert {d.status for d in deliveries(session, notice.id)} == {"delivered", "failed"}


async def test_messages_alibaba_still_waits_on_turn_unknown_and_throttling_stops_a_run(
    ctx: dict[str, Any], session: Session, agency: Agency, sandbox: tuple[SandboxState, RunningServer]
) -> None:
    state, server = sandbox
    state.config.report_delay = 3600  # the carrier never answers within the test
    for i in range(3):
        make_subscriber(session, f"1390000{i:04d}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"])
    await fanout_notice(ctx, notice.id)
    await drain(ctx)
    sent_at = utcnow()
    ctx["clock"] = lambda: sent_at + timedelta(seconds=TIMEOUT - 100)
    state.add_fault("aliyun_sms", "rate_limit", target="status", count=1)
    assert await pull_receipts(ctx, force=True) == {"asked": 3, "settled": 0, "errors": 1}  # stopped at once
    assert await pull_receipts(ctx, force=True) == {"asked": 3, "settled": 0, "waiting": 3}
    assert isinstance(ctx["providers"].adapter("aliyun_sms"), AliyunSms)
    ctx["clock"] = lambda: sent_at + timedelta(seconds=TIMEOUT + 60)
    assert (await sweep(ctx))["expired"] == 3
    assert {d.status for d in deliveries(session, notice.id)} == {"unknown"}
