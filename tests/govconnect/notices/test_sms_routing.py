"""Weighted SMS routing: normal SMS split between the Alibaba API and CMPP by cost, failover as before."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from channels.base import SendResult
from govconnect.agencies.models import Agency
from govconnect.notices.fanout import fanout_notice
from govconnect.notices.sending import Claimed, assign_providers, choose_provider, weighted_order
from govconnect.operations.health import CircuitState
from govconnect.settings import NoticePipelineSettings, Settings
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import drain
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_pipeline import deliveries, make_notice

SMS = ["aliyun_sms", "cmpp"]
WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def claimed(delivery_id: str, attempts: int = 1) -> Claimed:
    return Claimed(delivery_id, "13800000000", {}, "aliyun_sms", attempts, None, WHEN)


def weighted(settings: Settings, **weights: int) -> Settings:
    notices = settings.notices.model_copy(update={"sms_weights": weights})
    return settings.model_copy(update={"notices": notices})


def test_split_follows_the_weights(settings: Settings) -> None:
    routed = weighted(settings, aliyun_sms=1, cmpp=3)
    firsts = Counter(choose_provider(routed, SMS, claimed(f"dlv-{i:06d}")) for i in range(20_000))
    # Deterministic (hash of the id), so this exact split repeats; ±2 points of 25 % / 75 %.
    assert abs(firsts["cmpp"] / 20_000 - 0.75) < 0.02 and abs(firsts["aliyun_sms"] / 20_000 - 0.25) < 0.02
    assert Counter(choose_provider(settings, SMS, claimed(f"dlv-{i}")) for i in range(100)) == {"aliyun_sms": 100}
    only_cmpp = weighted(settings, aliyun_sms=0, cmpp=1)
    assert {choose_provider(only_cmpp, SMS, claimed(f"d{i}")) for i in range(200)} == {"cmpp"}


def test_retries_stay_then_fail_over_then_come_back(settings: Settings) -> None:
    routed = weighted(settings, aliyun_sms=1, cmpp=1)
    after = routed.notices.failover_after
    for i in range(50):
        order = weighted_order({"aliyun_sms": 1, "cmpp": 1}, SMS, f"r-{i}")
        tries = [choose_provider(routed, SMS, claimed(f"r-{i}", attempt)) for attempt in range(1, 2 * after + 2)]
        assert tries == [order[0]] * after + [order[1]] * after + [order[0]]


def test_urgent_sms_and_open_circuits(settings: Settings) -> None:
    routed = weighted(settings, aliyun_sms=1, cmpp=9)
    items = [claimed(f"u-{i}") for i in range(200)]
    urgent, _ = assign_providers(routed, SMS, items, {}, urgent=True)
    assert set(urgent) == {"aliyun_sms"}  # urgent: the preferred (first) provider, never split
    normal, _ = assign_providers(routed, SMS, items, {})
    assert len(normal["cmpp"]) > len(normal["aliyun_sms"]) > 0
    closed_cmpp = {"cmpp": CircuitState("open", retry_after=5.0)}
    moved, held = assign_providers(routed, SMS, items, closed_cmpp)
    assert set(moved) == {"aliyun_sms"} and len(moved["aliyun_sms"]) == 200 and not held


def test_weights_are_validated() -> None:
    with pytest.raises(ValidationError):
        NoticePipelineSettings(sms_weights={"aliyun_sms": -1, "cmpp": 2})
    with pytest.raises(ValidationError):
        NoticePipelineSettings(sms_weights={"aliyun_sms": 0, "cmpp": 0})
    with pytest.raises(ValidationError):
        NoticePipelineSettings(sms_weights={"wechat_mp": 1})
    assert NoticePipelineSettings(sms_weights={"cmpp": 2}).sms_weights == {"cmpp": 2}


async def test_pipeline_splits_normal_sms_and_fails_over(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    ctx["settings"] = weighted(ctx["settings"], aliyun_sms=1, cmpp=1)
    # Normal SMS wait out quiet hours: run the clock from a Beijing noon.
    noon, started = datetime.now(UTC).replace(hour=4, minute=0, second=0), time.monotonic()
    ctx["clock"] = lambda: noon + timedelta(seconds=time.monotonic() - started)
    for i in range(40):
        make_subscriber(session, f"1390000{i:04d}", None, channels=["sms"])
    notice = make_notice(session, agency, channels=["sms"], urgency="normal")
    await fanout_notice(ctx, notice.id)
    drawn = {
        d.recipient: weighted_order({"aliyun_sms": 1, "cmpp": 1}, SMS, d.id)[0] for d in deliveries(session, notice.id)
    }
    failing = {phone for phone, first in drawn.items() if first == "cmpp"}
    failing = set(sorted(failing)[:3])  # CMPP refuses these: after `failover_after` tries they move to Alibaba
    assert len(failing) == 3
    fake_providers["cmpp"].script = lambda m, a: (
        SendResult.retryable(m.reference, "cmpp-8")
        if m.recipient in failing
        else SendResult.accepted(m.reference, f"c-{m.reference}")
    )
    await drain(ctx)
    rows = deliveries(session, notice.id)
    assert all(d.status == "sent" for d in rows), Counter((d.status, d.error_code, d.provider) for d in rows)
    for d in rows:
        first = weighted_order({"aliyun_sms": 1, "cmpp": 1}, SMS, d.id)[0]
        expected = "aliyun_sms" if d.recipient in failing else first
        assert d.provider == expected, (d.recipient, d.provider, first)
    used = Counter(d.provider for d in rows)
    assert used["cmpp"] >= 10 and used["aliyun_sms"] >= 10
