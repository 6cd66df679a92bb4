"""The sandbox's own control surface."""

from __future__ import annotations

import httpx
import pytest

from channels.catalogue import CHANNEL_PROVIDERS
from channels.registry import PROVIDERS, provider_class, providers_for
from channels.sandbox import SandboxConfig, SandboxState
from tests.channels.conftest import Sandbox


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "nope", "kind": "error"},
        {"provider": "wecom", "kind": "explode"},
        {"provider": "wecom", "kind": "error", "bogus": 1},
        {"kind": "error"},
    ],
)
async def test_bad_fault_requests_are_400(sandbox: Sandbox, body: dict[str, object]) -> None:
    r = await sandbox.post("/_sandbox/faults", body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


async def test_fault_list_and_clear(sandbox: Sandbox) -> None:
    await sandbox.fault("wecom", "latency", latency_ms=5)
    await sandbox.fault("weibo", "http_5xx")
    assert len((await sandbox.get("/_sandbox/faults"))["faults"]) == 2
    async with httpx.AsyncClient() as c:
        r = await c.delete(f"{sandbox.url}/_sandbox/faults", params={"provider": "weibo"})
    assert r.json() == {"removed": 1}
    assert [f["provider"] for f in (await sandbox.get("/_sandbox/faults"))["faults"]] == ["wecom"]


async def test_unknown_action_and_control_input_errors(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sandbox.url}/", data={"Action": "DeleteEverything"})
        assert r.status_code == 404 and r.json()["Code"] == "InvalidAction.NotFound"
        assert (await c.get(f"{sandbox.url}/_sandbox/sms/inbox")).status_code == 400
        assert (await c.post(f"{sandbox.url}/_sandbox/sms/reply", content=b"[]")).status_code == 400
        assert (await c.post(f"{sandbox.url}/_sandbox/wechat/follow", json={"openid": "x"})).status_code == 400
        assert (await c.get(f"{sandbox.url}/_sandbox")).json()["sandbox"]


async def test_missing_parameters_answer_real_codes(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{sandbox.url}/dysmsapi/", data={"Action": "SendSms"})
        assert r.status_code == 400 and r.json()["Code"] == "MissingAccessKeyId"
        r = await c.post(f"{sandbox.url}/wechat/cgi-bin/message/template/send", json={})
        assert r.json()["errcode"] == 41001
        r = await c.post(f"{sandbox.url}/weibo/2/statuses/share.json", data={"status": "x"})
        assert r.status_code == 401 and r.json()["error_code"] == 21301


def test_token_overlap_and_expiry() -> None:
    state = SandboxState(SandboxConfig(token_overlap=0))
    first = state.issue_token("wechat_mp")
    assert state.check_token("wechat_mp", first.value) == 0
    state.issue_token("wechat_mp")
    assert state.check_token("wechat_mp", first.value) == 40001  # replaced, overlap over
    assert state.check_token("wecom", first.value) == 40014
    third = state.issue_token("wecom")
    state.add_fault("wecom", "expire_tokens")
    assert state.check_token("wecom", third.value) == 42001


def test_registry() -> None:
    assert provider_class("aliyun_sms").provider == "aliyun_sms"
    assert set(CHANNEL_PROVIDERS) == {"sms", "voice", "wechat", "wecom", "dingtalk", "weibo"}
    assert providers_for("sms")[0] == "aliyun_sms"
    for name, cls in PROVIDERS.items():
        assert cls.provider == name and name in {p for ps in CHANNEL_PROVIDERS.values() for p in ps}


async def test_standalone_sandbox_runs_cmpp_simulator_and_phone_replies_over_it() -> None:
    import asyncio

    from channels.base import InboundReply, OutboundMessage, Outcome
    from channels.cmpp import CmppChannel, CmppConfig
    from channels.sandbox import create_sandbox_app
    from channels.sandbox.runner import run_in_thread

    state = SandboxState(SandboxConfig(cmpp_port=0, report_delay=0.01, cmpp_service_number="1069057012"))
    server = run_in_thread(create_sandbox_app(state=state))
    replies: list[InboundReply] = []
    got_reply = asyncio.Event()

    async def on_reply(reply: InboundReply) -> None:
        replies.append(reply)
        got_reply.set()

    try:
        async with httpx.AsyncClient(timeout=5) as c:
            port = (await c.get(f"{server.url}/_sandbox")).json()["cmpp_port"]
            config = CmppConfig(
                port=port,
                source_addr="901234",
                shared_secret="sandbox-secret",
                service_id="GOV",
                reconnect_initial=0.05,
            )
            channel = CmppChannel(config, on_reply=on_reply)
            try:
                [result] = await channel.send(
                    [OutboundMessage(reference="c1", recipient="13800138011", text="停电通知")]
                )
                assert result.outcome is Outcome.ACCEPTED
                r = await c.post(
                    f"{server.url}/_sandbox/sms/reply", json={"phone": "13800138011", "content": "TD", "via": "cmpp"}
                )
                assert r.status_code == 200 and r.json()["via"] == "cmpp"
                await asyncio.wait_for(got_reply.wait(), 5)
                assert (replies[0].sender, replies[0].text) == ("13800138011", "TD")
                assert replies[0].extra["dest_id"] == "1069057012"  # the SP's configured number
                # Faults on the CMPP link through the same control endpoint.
                r = await c.post(f"{server.url}/_sandbox/faults", json={"provider": "cmpp", "kind": "rate_limit"})
                assert r.status_code == 201
                [limited] = await channel.send([OutboundMessage(reference="c2", recipient="13800138011", text="x")])
                assert (limited.outcome, limited.retry_after) == (Outcome.RETRYABLE, 1.0)
                r = await c.post(f"{server.url}/_sandbox/faults", json={"provider": "cmpp", "kind": "drop_connections"})
                assert r.json()["dropped"] == 1
                outcomes = []
                for _ in range(40):  # retryable while the link is down, accepted once it is back
                    [again] = await channel.send([OutboundMessage(reference="c3", recipient="13800138011", text="y")])
                    outcomes.append(again.outcome)
                    if again.outcome is Outcome.ACCEPTED:
                        break
                    await asyncio.sleep(0.1)
                assert outcomes[-1] is Outcome.ACCEPTED and set(outcomes[:-1]) <= {Outcome.RETRYABLE}
                bad = await c.post(f"{server.url}/_sandbox/faults", json={"provider": "cmpp", "kind": "fail_reports"})
                assert bad.status_code == 400
            finally:
                await channel.aclose()
            inbox = (await c.get(f"{server.url}/_sandbox/sms/inbox", params={"phone": "13800138011"})).json()
            assert inbox["messages"][0]["text"] == "停电通知回T退订"
    finally:
        server.stop()


async def test_records_keep_a_bounded_window_and_running_counts() -> None:
    from channels import aliyun_rpc
    from channels.sandbox import create_sandbox_app

    config = SandboxConfig(keep_messages=50, report_delay=0)
    state = SandboxState(config)
    transport = httpx.ASGITransport(app=create_sandbox_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        numbers = [f"1380000{i:04d}" for i in range(120)]
        for start in range(0, 120, 40):
            params = {
                "PhoneNumbers": ",".join(numbers[start : start + 40]),
                "SignName": "衢州发布",
                "TemplateCode": "SMS_000000",
                "TemplateParam": '{"content":"x"}',
            }
            signed = aliyun_rpc.signed_params(
                "SendSms", params, access_key_id=config.aliyun_access_key_id, secret=config.aliyun_access_key_secret
            )
            assert (await c.post("/dysmsapi/", data=signed)).json()["Code"] == "OK"
        token = state.issue_token("dingtalk").value
        for i in range(30):
            body = {
                "agent_id": config.dingtalk_agentid,
                "userid_list": f"u{i},v{i}",
                "msg": {"msgtype": "text", "text": {"content": f"{i}"}},
            }
            r = await c.post(
                "/dingtalk/topapi/message/corpconversation/asyncsend_v2", params={"access_token": token}, json=body
            )
            assert r.json()["errcode"] == 0
        counts = (await c.get("/_sandbox/counts")).json()
        window = (await c.get("/_sandbox/messages", params={"provider": "aliyun_sms"})).json()
    assert counts["accepted"] == {"aliyun_sms": 120, "dingtalk": 60}  # counted beyond the window
    assert counts["received"] == {"aliyun_sms": 120, "dingtalk": 60} and counts["kept"] == {
        "aliyun_sms": 50,
        "dingtalk": 50,
    }
    assert window["count"] == 50 and [m["recipient"] for m in window["messages"]] == numbers[70:]
    assert len(state.sms_details) == 50 and len(state.pushes) == 0
    assert len(state.dingtalk.tasks) <= 10 and max(state.dingtalk.tasks) == state.dingtalk.tasks_total + 256_271_667_000
    assert state.dingtalk.daily["u29"] == 1
    state.dingtalk.start_day("19700101")  # a new Beijing day forgets the per-person counts
    assert not state.dingtalk.daily and not state.dingtalk.contents


def test_bounded_dict_forgets_the_least_recently_written() -> None:
    from channels.sandbox.bounded import BoundedDict

    kept: BoundedDict[str, int] = BoundedDict(2)
    kept["a"], kept["b"] = 1, 2
    kept["a"] = 3  # written again: now the newest
    kept["c"] = 4
    assert dict(kept) == {"a": 3, "c": 4}
