"""WeChat official account adapter: template messages, the shared token, callback events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from channels.base import OutboundMessage, Outcome
from channels.tokens import MemoryTokenStore, RedisTokenStore
from channels.wechat_mp import WechatMp, callback_signature, check_signature, parse_event
from tests.channels.conftest import Sandbox, wechat_config

OPENID = "oSandbox_follower_0001"


def tmsg(ref: str, openid: str = OPENID) -> OutboundMessage:
    return OutboundMessage(
        reference=ref, recipient=openid, text="明日停水", title="停水通知", url="https://m.example.gov.cn/n/1"
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


async def test_template_message_and_finish_event(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [result] = await WechatMp(wechat_config(sandbox), client).send([tmsg("w1")])
    assert result.outcome is Outcome.ACCEPTED and result.provider_id
    [push] = await sandbox.receiver.wait_for("/callbacks/wechat_mp")
    q = push["query"]
    token = sandbox.state.config.wechat_callback_token
    assert check_signature(token, q["signature"], q["timestamp"], q["nonce"])
    assert not check_signature("other-token", q["signature"], q["timestamp"], q["nonce"])
    event = parse_event(push["body"])
    receipt = event.receipt()
    assert event.event == "TEMPLATESENDJOBFINISH" and receipt is not None
    assert (receipt.provider_id, receipt.delivered, receipt.recipient) == (result.provider_id, True, OPENID)


async def test_client_msg_id_makes_resends_harmless(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    mp = WechatMp(wechat_config(sandbox), client)
    [a] = await mp.send([tmsg("w2")])
    [b] = await mp.send([tmsg("w2")])
    assert a.provider_id == b.provider_id
    counts = await sandbox.get("/_sandbox/counts")
    assert counts["by_reference"]["wechat_mp"] == {"w2": 1} and counts["wechat_repeats"] == {"w2": 1}


async def test_unfollow_event_then_43004_permanent(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    r = await sandbox.post("/_sandbox/wechat/follow", {"openid": OPENID, "event": "unsubscribe", "wait": True})
    assert r.json()["status"] == 200
    [push] = sandbox.receiver.on("/callbacks/wechat_mp")
    assert parse_event(push["body"]).is_unsubscribe
    [result] = await WechatMp(wechat_config(sandbox), client).send([tmsg("w3")])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "43004")
    await sandbox.post("/_sandbox/wechat/follow", {"openid": OPENID, "event": "subscribe", "wait": True})
    assert parse_event(sandbox.receiver.received[-1]["body"]).is_subscribe
    [again] = await WechatMp(wechat_config(sandbox), client).send([tmsg("w4")])
    assert again.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("fault", "outcome", "code", "retry_after"),
    [
        ({"kind": "error", "code": 45009}, Outcome.RETRYABLE, "45009", 3600.0),
        ({"kind": "error", "code": -1}, Outcome.RETRYABLE, "-1", None),
        ({"kind": "error", "code": 40003}, Outcome.PERMANENT, "40003", None),
        ({"kind": "rate_limit", "retry_after": 5}, Outcome.RETRYABLE, "http_429", 5.0),
        ({"kind": "http_5xx"}, Outcome.RETRYABLE, "http_503", None),
        ({"kind": "timeout", "seconds": 3}, Outcome.RETRYABLE, "timeout", None),
    ],
)
async def test_wechat_faults(
    sandbox: Sandbox,
    client: httpx.AsyncClient,
    fault: dict[str, object],
    outcome: Outcome,
    code: str,
    retry_after: float | None,
) -> None:
    await sandbox.fault("wechat_mp", count=1, **fault)  # type: ignore[arg-type]
    [result] = await WechatMp(wechat_config(sandbox), client).send([tmsg("wf")])
    assert (result.outcome, result.code, result.retry_after) == (outcome, code, retry_after)


async def test_wrong_secret_is_permanent(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    [result] = await WechatMp(wechat_config(sandbox, secret="wrong"), client).send([tmsg("ws")])
    assert (result.outcome, result.code) == (Outcome.PERMANENT, "40125")


async def test_token_cached_and_refreshed_once_on_expiry(sandbox: Sandbox, client: httpx.AsyncClient) -> None:
    mp = WechatMp(wechat_config(sandbox), client, MemoryTokenStore())
    for i in range(3):
        assert (await mp.send([tmsg(f"t{i}")]))[0].outcome is Outcome.ACCEPTED
    assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"wechat_mp": 1}
    await sandbox.fault("wechat_mp", "expire_tokens")
    [result] = await mp.send([tmsg("t9")])
    assert result.outcome is Outcome.ACCEPTED
    assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"wechat_mp": 2}


async def test_concurrent_workers_share_one_refresh_through_redis(
    sandbox: Sandbox, redis_url: str, queue_name: str
) -> None:
    """Twelve 'processes' (own Redis connection, own HTTP client, own adapter) send at once."""
    prefix = f"{queue_name}:token:"
    workers = []
    for _ in range(12):
        r = aioredis.Redis.from_url(redis_url)
        c = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=1.0))
        workers.append((r, c, WechatMp(wechat_config(sandbox), c, RedisTokenStore(r, prefix=prefix))))
    try:
        first = await asyncio.gather(
            *(w.send([tmsg(f"c{i}", f"oWorker_{i:04d}")]) for i, (_, _, w) in enumerate(workers))
        )
        assert all(res[0].outcome is Outcome.ACCEPTED for res in first)
        assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"wechat_mp": 1}
        await sandbox.fault("wechat_mp", "expire_tokens")  # every worker now holds an expired token
        second = await asyncio.gather(
            *(w.send([tmsg(f"e{i}", f"oWorker_{i:04d}")]) for i, (_, _, w) in enumerate(workers))
        )
        assert all(res[0].outcome is Outcome.ACCEPTED for res in second)
        assert (await sandbox.get("/_sandbox/counts"))["tokens_issued"] == {"wechat_mp": 2}
        assert sum(w.token.refreshes for _, _, w in workers) == 2
    finally:
        for r, c, _ in workers:
            await c.aclose()
            await r.delete(f"{prefix}wechat_mp:{sandbox.state.config.wechat_appid}")
            await r.aclose()


async def test_redis_lock_is_released_only_by_its_owner(redis_client: aioredis.Redis, queue_name: str) -> None:
    store = RedisTokenStore(redis_client, prefix=f"{queue_name}:", lock_timeout=0.2, wait=2)
    async with store.lock("k"):
        await asyncio.sleep(0.3)  # our lock expired ...
        assert await redis_client.set(f"{queue_name}:k:lock", "someone-else", nx=True, px=5000)
    assert await redis_client.get(f"{queue_name}:k:lock") == b"someone-else"  # ... and theirs survived
    await redis_client.delete(f"{queue_name}:k:lock")


def test_signature_and_event_parsing() -> None:
    sig = callback_signature("tok", "1700000000", "42")
    assert check_signature("tok", sig, "1700000000", "42")
    assert not check_signature("tok", sig, "1700000001", "42")
    xml = (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oX]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
        "<Status><![CDATA[failed:user block]]></Status></xml>"
    )
    receipt = parse_event(xml).receipt()
    assert receipt is not None and not receipt.delivered and receipt.code == "failed:user block"
    for bad in ("<xml>", "<other/>", '<!DOCTYPE x [<!ENTITY a "b">]><xml/>', "<xml><MsgType>event</MsgType></xml>"):
        with pytest.raises(ValueError):
            parse_event(bad)
