"""Weibo adapter: status cut with an ellipsis before the link, 30 posts an hour queued not dropped."""

from __future__ import annotations

import httpx
import pytest

from channels.base import OutboundMessage, Outcome
from channels.weibo import ELLIPSIS, PostWindow, Weibo, compose_status
from tests.channels.conftest import Sandbox, weibo_config

URL = "https://m.example.gov.cn/n/3"


def post(ref: str, text: str) -> OutboundMessage:
    return OutboundMessage(reference=ref, recipient="", text=text, url=URL)


def test_compose_cuts_with_ellipsis_before_link() -> None:
    short = compose_status("今日空气质量优。", URL)
    assert short == f"今日空气质量优。 {URL}"
    long = compose_status("衢" * 300, URL, 140, title="通知")
    assert len(long) == 140 and long.endswith(f"{ELLIPSIS} {URL}") and long.startswith("【通知】")
    assert compose_status("衢" * (140 - len(URL) - 1), URL) == "衢" * (140 - len(URL) - 1) + f" {URL}"


async def test_post_appears_on_timeline(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [result] = await Weibo(weibo_config(sandbox), client).send([post("wb1", "台风“梅花”预计明晨登陆，" * 20)])
    assert result.outcome is Outcome.ACCEPTED
    timeline = await sandbox.get("/_sandbox/weibo/timeline")
    [status] = timeline["statuses"]
    assert status["idstr"] == result.provider_id and status["text"].endswith(f"{ELLIPSIS} {URL}")
    assert len(status["text"]) <= 140


async def test_local_window_queues_with_retry_after(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    weibo = Weibo(weibo_config(sandbox), client, PostWindow(2))
    results = [(await weibo.send([post(f"q{i}", f"第{i}条通知")]))[0] for i in range(3)]
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.RETRYABLE]
    assert results[2].retry_after is not None and 3500 < results[2].retry_after <= 3600
    assert (await sandbox.get("/_sandbox/weibo/timeline"))["total_number"] == 2


async def test_provider_limit_of_30_an_hour_is_retryable(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    weibo = Weibo(weibo_config(sandbox), client, PostWindow(1000))  # a second process, unaware of the first
    results = [(await weibo.send([post(f"r{i}", f"第{i}号公告")]))[0] for i in range(31)]
    assert all(r.outcome is Outcome.ACCEPTED for r in results[:30])
    assert (results[30].outcome, results[30].code) == (Outcome.RETRYABLE, "10023")
    assert results[30].retry_after and results[30].retry_after > 0


@pytest.mark.parametrize(
    ("overrides", "message", "code"),
    [
        ({"access_token": "bad"}, post("e1", "通知"), "21332"),
        ({"max_chars": 500}, post("e2", "长" * 300), "20012"),
        ({}, OutboundMessage(reference="e3", recipient="", text="没有链接"), "10017"),
    ],
)
async def test_weibo_rejections(
    sandbox: Sandbox, client: httpx.AsyncClient, overrides: dict[str, object], message: OutboundMessage, code: str
) -> None:
    [result] = await Weibo(weibo_config(sandbox, **overrides), client).send([message])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, code)


async def test_repeat_content_and_faults(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    weibo = Weibo(weibo_config(sandbox), client)
    await weibo.send([post("d1", "同一条")])
    [repeat] = await weibo.send([post("d2", "同一条")])
    assert (repeat.outcome, repeat.code) == (Outcome.PERMANENT, "20019")
    await sandbox.fault("weibo", "error", code=10001, count=1)
    [busy] = await weibo.send([post("d3", "系统繁忙时")])
    assert (busy.outcome, busy.code) == (Outcome.RETRYABLE, "10001")
    await sandbox.fault("weibo", "rate_limit", retry_after=9, count=1)
    [limited] = await weibo.send([post("d4", "限流时")])
    assert (limited.outcome, limited.retry_after) == (Outcome.RETRYABLE, 9.0)


async def test_destroy_removes_the_post_and_a_second_delete_finds_it_gone(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    weibo = Weibo(weibo_config(sandbox), client, PostWindow(1000))
    [kept] = await weibo.send([post("d1", "留下的通知")])
    [gone] = await weibo.send([post("d2", "撤回的通知")])
    outcome = await weibo.delete_post(str(gone.provider_id))
    assert outcome.done and outcome.code == ""
    timeline = await sandbox.get("/_sandbox/weibo/timeline")
    assert [s["idstr"] for s in timeline["statuses"]] == [kept.provider_id]
    again = await weibo.delete_post(str(gone.provider_id))  # 20101: already gone is what we wanted
    assert again.done and again.code == "20101"


async def test_destroy_errors(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    bad_token = await Weibo(weibo_config(sandbox, access_token="bad"), client).delete_post("123")
    assert (bad_token.done, bad_token.retryable, bad_token.code) == (False, False, "21332")
    not_a_number = await Weibo(weibo_config(sandbox), client).delete_post("abc")
    assert (not_a_number.done, not_a_number.code) == (False, "10017")
    await sandbox.fault("weibo", "error", code=10001, count=1)
    busy = await Weibo(weibo_config(sandbox), client).delete_post("123")
    assert (busy.done, busy.retryable, busy.code) == (False, True, "10001")
    await sandbox.fault("weibo", "http_5xx", count=1)
    down = await Weibo(weibo_config(sandbox), client).delete_post("123")
    assert down.retryable and not down.done
