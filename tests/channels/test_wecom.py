"""WeCom adapter: batches of members, per-recipient results from invaliduser, token refresh."""

from __future__ import annotations

import httpx
import pytest

from channels.base import OutboundMessage, Outcome
from channels.wecom import Wecom
from tests.channels.conftest import Sandbox, wecom_config


def staff(ref: str, user: str, text: str = "今晚 8 点防汛会商，请准时参加。") -> OutboundMessage:
    return OutboundMessage(reference=ref, recipient=user, text=text, title="防汛会商")


async def test_one_request_for_many_members_with_invalid_ones(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.post("/_sandbox/wecom/invalid_users", {"users": ["ghost1", "ghost2"]})
    members = ["zhangsan", "ghost1", "lisi", "ghost2", "wangwu"]
    results = await Wecom(wecom_config(sandbox), client).send([staff(f"s{i}", u) for i, u in enumerate(members)])
    outcome = {members[i]: r for i, r in enumerate(results)}
    assert outcome["ghost1"].outcome is Outcome.PERMANENT and outcome["ghost1"].code == "invaliduser"
    assert {outcome[u].outcome for u in ("zhangsan", "lisi", "wangwu")} == {Outcome.ACCEPTED}
    counts = await sandbox.get("/_sandbox/counts")
    assert counts["requests"]["wecom"] == 1 and counts["accepted"]["wecom"] == 3
    sent = await sandbox.get("/_sandbox/messages", provider="wecom", recipient="lisi")
    assert "防汛会商" in sent["messages"][0]["text"]


async def test_all_invalid_is_81013(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    await sandbox.post("/_sandbox/wecom/invalid_users", {"users": ["g1", "g2"]})
    results = await Wecom(wecom_config(sandbox), client).send([staff("a", "g1"), staff("b", "g2")])
    assert {(r.outcome, r.code) for r in results} == {(Outcome.PERMANENT, "81013")}


async def test_different_texts_are_separate_requests_and_cards_with_links(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    link = OutboundMessage(
        reference="l", recipient="u1", text="详见通知", title="通知", url="https://m.example.gov.cn/n/2"
    )
    results = await Wecom(wecom_config(sandbox), client).send([staff("p", "u2"), link])
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    msgs = (await sandbox.get("/_sandbox/messages", provider="wecom"))["messages"]
    assert sorted(m["action"] for m in msgs) == ["text", "textcard"]


async def test_token_refresh_on_expiry_and_bad_agent(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    wecom = Wecom(wecom_config(sandbox), client)
    await wecom.send([staff("t1", "u1")])
    await sandbox.fault("wecom", "expire_tokens")
    [result] = await wecom.send([staff("t2", "u1")])
    assert result.outcome is Outcome.ACCEPTED
    assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"wecom": 2}
    [bad] = await Wecom(wecom_config(sandbox, agentid=1), client).send([staff("t3", "u1")])
    assert (bad.outcome, bad.code) == (Outcome.PERMANENT, "40056")
    [secret] = await Wecom(wecom_config(sandbox, corpsecret="x"), client).send([staff("t4", "u1")])
    assert secret.outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        ({"kind": "error", "code": -1}, Outcome.RETRYABLE, "-1"),
        ({"kind": "error", "code": 45033}, Outcome.RETRYABLE, "45033"),
        ({"kind": "error", "code": 60020}, Outcome.PERMANENT, "60020"),
        ({"kind": "http_5xx", "status": 500}, Outcome.RETRYABLE, "http_500"),
        ({"kind": "rate_limit", "retry_after": 3}, Outcome.RETRYABLE, "http_429"),
        ({"kind": "error", "code": -1, "target": "token"}, Outcome.RETRYABLE, "-1"),
    ],
)
async def test_wecom_faults(
    sandbox: Sandbox, client: httpx.AsyncClient, fault: dict[str, object], outcome: Outcome, code: str
) -> None:
    await sandbox.fault("wecom", count=1, **fault)  # type: ignore[arg-type]
    [result] = await Wecom(wecom_config(sandbox), client).send([staff("f", "u1")])
    assert (result.outcome, result.code) == (outcome, code)
