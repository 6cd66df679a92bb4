"""Click-to-dial (双呼) through the voice adapter against the sandbox: both legs, outcomes, CancelCall."""

from __future__ import annotations

import httpx
import pytest

from channels.aliyun_voice import (
    cancel_call,
    click_to_dial,
    parse_call_reports,
    parse_voice_report,
)
from channels.base import PermanentError
from tests.channels.conftest import Sandbox, voice_config

STAFF = "13800138001"
CITIZEN = "13900139002"


@pytest.mark.parametrize(
    ("caller", "called", "state", "leg"),
    [
        (STAFF, CITIZEN, "answered", ""),
        (STAFF, "13900001111", "busy", "callee"),
        (STAFF, "13900000000", "no_answer", "callee"),
        ("13800000000", CITIZEN, "no_answer", "caller"),  # our staff did not pick up: the citizen is never rung
    ],
)
async def test_outcome_reported_through_voice_report(
    sandbox: Sandbox, client: httpx.AsyncClient, caller: str, called: str, state: str, leg: str
) -> None:
    call_id = await click_to_dial(client, voice_config(sandbox), caller=caller, called=called, out_id="dial_t1")
    assert "^" in call_id
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_voice/report")
    [report] = parse_call_reports(push["body"])
    assert (report.call_id, report.out_id, report.state, report.leg) == (call_id, "dial_t1", state, leg)
    assert (report.duration > 0) == (state == "answered")
    assert parse_voice_report(push["body"]) == []  # not taken for a delivery's receipt
    [sent] = (await sandbox.get("/_sandbox/messages", provider="aliyun_voice", reference="dial_t1"))["messages"]
    assert sent["action"] == "ClickToDial"


async def test_both_sides_see_the_government_number(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await click_to_dial(client, voice_config(sandbox), caller=STAFF, called=CITIZEN, out_id="dial_t2")
    [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_voice/report")
    assert b'"caller": "057012345"' in push["body"] or b'"caller":"057012345"' in push["body"]


async def test_cancel_before_the_call_ends(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    sandbox.state.config.report_delay = 1.0
    try:
        config = voice_config(sandbox)
        call_id = await click_to_dial(client, config, caller=STAFF, called=CITIZEN, out_id="dial_t3")
        assert await cancel_call(client, config, call_id)
        [push] = await sandbox.receiver.wait_for("/callbacks/aliyun_voice/report", wait_s=5)
        [report] = parse_call_reports(push["body"])
        assert report.state == "cancelled"
        assert not await cancel_call(client, config, call_id)  # already over
        assert not await cancel_call(client, config, "1^2")  # unknown
    finally:
        sandbox.state.config.report_delay = 0.05


async def test_bad_number_is_permanent(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentError) as err:
        await click_to_dial(client, voice_config(sandbox), caller="12", called=CITIZEN, out_id="dial_t4")
    assert err.value.code == "isv.MOBILE_NUMBER_ILLEGAL"
    with pytest.raises(PermanentError) as err:
        await click_to_dial(
            client, voice_config(sandbox, access_key_secret="wrong"), caller=STAFF, called=CITIZEN, out_id="dial_t5"
        )
    assert err.value.code == "SignatureDoesNotMatch"
