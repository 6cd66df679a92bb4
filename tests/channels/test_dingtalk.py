"""DingTalk adapter against the sandbox: tasks of up to 100 people, progress, send results, limits, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from channels.base import OutboundMessage, Outcome, PermanentError, RetryableError
from channels.dingtalk import Dingtalk
from tests.channels.conftest import Sandbox, dingtalk_config

TASKS = "/dingtalk/topapi/message/corpconversation"


def notice(ref: str, user: str, text: str = "今晚 8 点防汛会商，请准时参加。", **kw: str) -> OutboundMessage:
    return OutboundMessage(
        reference=ref, recipient=user, text=text, title=kw.get("title", "防汛会商"), url=kw.get("url")
    )


@pytest.fixture
def daily_cap(sandbox: Sandbox) -> Iterator[None]:
    sandbox.state.config.dingtalk_daily_per_user = 2
    yield
    sandbox.state.config.dingtalk_daily_per_user = 500


async def finished(dingtalk: Dingtalk, task_id: str) -> None:
    for _ in range(50):
        if (await dingtalk.send_progress(task_id)).done:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("task never finished")


async def test_one_task_then_progress_read_unread_and_invalid(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.post("/_sandbox/dingtalk/invalid_users", {"users": ["ghost"]})
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    people = ["zhangsan", "ghost", "lisi"]
    results = await dingtalk.send([notice(f"d{i}", u) for i, u in enumerate(people)])
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    task_id = str(results[0].provider_id)
    assert task_id.isdigit() and {r.provider_id for r in results} == {task_id}
    counts = await sandbox.get("/_sandbox/counts")
    assert counts["requests"]["dingtalk"] == 1 and counts["accepted"]["dingtalk"] == 2
    early = await dingtalk.send_result(task_id)  # still sending: nobody reached yet, the invalid one known
    assert early.unread == frozenset() and early.failed == {"ghost": "invalid"}
    await finished(dingtalk, task_id)
    await sandbox.post("/_sandbox/dingtalk/read", {"users": ["zhangsan"], "task_id": task_id})
    result = await dingtalk.send_result(task_id)
    assert (result.read, result.unread, result.failed) == ({"zhangsan"}, {"lisi"}, {"ghost": "invalid"})
    receipts = {r.recipient: r for r in result.receipts(task_id)}
    assert receipts["zhangsan"].delivered and receipts["zhangsan"].code == "read"
    assert receipts["lisi"].delivered and receipts["lisi"].code == "unread"
    assert not receipts["ghost"].delivered and receipts["ghost"].code == "invalid"
    assert {r.provider_id for r in receipts.values()} == {task_id}


async def test_text_markdown_and_action_card_linking_to_the_notice(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    plain = OutboundMessage(reference="t", recipient="u1", text="明天停水")
    card = notice("c", "u2", url="https://m.example.gov.cn/m/notices/1")
    results = await dingtalk.send([plain, notice("m", "u3"), card])
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert len({r.provider_id for r in results}) == 3  # different content: separate tasks
    msgs = (await sandbox.get("/_sandbox/messages", provider="dingtalk"))["messages"]
    assert sorted(m["action"] for m in msgs) == ["action_card", "markdown", "text"]
    assert Dingtalk.message(card)["action_card"]["single_url"] == "https://m.example.gov.cn/m/notices/1"


async def test_same_content_once_a_day_and_the_daily_cap_are_forbidden(
    sandbox: Sandbox, client: httpx.AsyncClient, daily_cap: None
) -> None:
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    tasks = []
    for text in ("第一条", "第一条", "第二条", "第三条"):
        [result] = await dingtalk.send([notice(text, "wangwu", text=text)])
        assert result.outcome is Outcome.ACCEPTED  # DingTalk takes the task; the limits show in the result
        tasks.append(str(result.provider_id))
    outcomes = []
    for task_id in tasks:
        await finished(dingtalk, task_id)
        result = await dingtalk.send_result(task_id)
        outcomes.append("unread" if "wangwu" in result.unread else result.failed["wangwu"])
    assert outcomes == ["unread", "143106", "unread", "143105"]
    refused = (await dingtalk.send_result(tasks[3])).receipts(tasks[3])
    assert [(r.delivered, r.code) for r in refused] == [(False, "143105")]


async def test_token_is_fetched_once_shared_and_refreshed_when_rejected(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    await dingtalk.send([notice("a", "u1", text="一")])
    await dingtalk.send([notice("b", "u1", text="二")])
    assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"dingtalk": 1}
    await sandbox.fault("dingtalk", "expire_tokens")  # 42001 on the next call
    [result] = await dingtalk.send([notice("c", "u1", text="三")])
    assert result.outcome is Outcome.ACCEPTED
    assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"dingtalk": 2}
    params = {"appkey": sandbox.state.config.dingtalk_appkey, "appsecret": sandbox.state.config.dingtalk_appsecret}
    first = (await client.get(f"{sandbox.url}/dingtalk/gettoken", params=params)).json()
    again = (await client.get(f"{sandbox.url}/dingtalk/gettoken", params=params)).json()
    assert first["access_token"] == again["access_token"] and first["expires_in"] == 7200
    bad = await client.post(f"{sandbox.url}{TASKS}/asyncsend_v2", params={"access_token": "nope"}, json={})
    assert bad.json()["errcode"] == 40014


async def test_wrong_credentials_and_agent(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [secret] = await Dingtalk(dingtalk_config(sandbox, appsecret="x"), client).send([notice("s", "u1")])
    assert (secret.outcome, secret.code) == (Outcome.PERMANENT, "40089")
    [agent] = await Dingtalk(dingtalk_config(sandbox, agentid=1), client).send([notice("g", "u1")])
    assert (agent.outcome, agent.code) == (Outcome.PERMANENT, "88:60011")


async def test_bad_parameters_are_40035(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    token = await dingtalk.token.get()
    url, agent = f"{sandbox.url}{TASKS}/asyncsend_v2", sandbox.state.config.dingtalk_agentid
    text = {"msgtype": "text", "text": {"content": "x"}}
    many = ",".join(f"user{i}" for i in range(101))
    for body in (
        {"agent_id": agent, "userid_list": many, "msg": text},
        {"agent_id": agent, "userid_list": "u1", "msg": {"msgtype": "text"}},
        {"agent_id": agent, "userid_list": "", "msg": text},
    ):
        answer = await client.post(url, params={"access_token": token}, json=body)
        assert answer.json()["errcode"] == 40035
    with pytest.raises(PermanentError) as unknown:
        await dingtalk.send_result("999")
    assert unknown.value.code == "40035"
    [long] = await dingtalk.send([notice("l", "u1", text="长" * 700)])
    assert (long.outcome, long.code) == (Outcome.PERMANENT, "too_long")
    assert (await sandbox.get("/_sandbox/counts"))["requests"].get("dingtalk", 0) == 3


async def test_sdk_style_form_body(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    """DingTalk's Top SDKs post a form with `msg` as a JSON string."""
    token = await Dingtalk(dingtalk_config(sandbox), client).token.get()
    form = {
        "agent_id": str(sandbox.state.config.dingtalk_agentid),
        "userid_list": "u1,u2",
        "msg": json.dumps({"msgtype": "text", "text": {"content": "表单"}}, ensure_ascii=False),
    }
    answer = await client.post(f"{sandbox.url}{TASKS}/asyncsend_v2", params={"access_token": token}, data=form)
    body = answer.json()
    assert body["errcode"] == 0 and isinstance(body["task_id"], int) and body["request_id"]
    progress = await client.post(
        f"{sandbox.url}{TASKS}/getsendprogress",
        params={"access_token": token},
        data={"agent_id": form["agent_id"], "task_id": str(body["task_id"])},
    )
    assert progress.json()["progress"]["status"] in (1, 2)


async def test_failed_sends_are_listed_failed(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.fault("dingtalk", "fail_reports", count=1)
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    [result] = await dingtalk.send([notice("f", "u1")])
    await finished(dingtalk, str(result.provider_id))
    assert (await dingtalk.send_result(str(result.provider_id))).failed == {"u1": "failed"}


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        ({"kind": "error", "code": -1}, Outcome.RETRYABLE, "-1"),
        ({"kind": "error", "code": 143103}, Outcome.RETRYABLE, "143103"),
        ({"kind": "error", "code": 143104}, Outcome.RETRYABLE, "143104"),
        ({"kind": "error", "code": 40035}, Outcome.PERMANENT, "40035"),
        ({"kind": "http_5xx", "status": 502}, Outcome.RETRYABLE, "http_502"),
        ({"kind": "rate_limit", "retry_after": 3}, Outcome.RETRYABLE, "http_429"),
        ({"kind": "error", "code": -1, "target": "token"}, Outcome.RETRYABLE, "-1"),
    ],
)
async def test_dingtalk_faults(
    sandbox: Sandbox, client: httpx.AsyncClient, fault: dict[str, object], outcome: Outcome, code: str
) -> None:
    await sandbox.fault("dingtalk", count=1, **fault)  # type: ignore[arg-type]
    [result] = await Dingtalk(dingtalk_config(sandbox), client).send([notice("f", "u1")])
    assert (result.outcome, result.code) == (outcome, code)


async def test_status_calls_raise_classified_errors(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    dingtalk = Dingtalk(dingtalk_config(sandbox), client)
    [sent] = await dingtalk.send([notice("p", "u1")])
    await sandbox.fault("dingtalk", "error", code=-1, count=1, target="status")
    with pytest.raises(RetryableError):
        await dingtalk.send_progress(str(sent.provider_id))
    await finished(dingtalk, str(sent.provider_id))
