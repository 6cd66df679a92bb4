"""WeChat pushes (issue 11 medium 5): timestamp window, one use per nonce (in memory and through
Redis), and encrypted mode where msg_signature binds the body; the sandbox pushes both ways."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from channels.sandbox import SandboxState
from channels.sandbox.wechat import event_message
from channels.wechat_crypto import WechatCipher, encrypted_push
from channels.wechat_mp import callback_signature, event_xml
from govconnect.app import create_app
from govconnect.providers.sandbox import sandbox_config
from govconnect.settings import Settings, WechatMpSettings

TOKEN = "wechat-callback-token"  # noqa: S105
AES_KEY = "Zx9ypQ1rT2uV3wX4yZ5aB6cD7eF8gH9iJ0kL1mN2oP3"
APPID = "wxgov0000000000001"


def wechat_settings(settings: Settings, encrypted: bool, **extra: Any) -> Settings:
    wechat = WechatMpSettings(
        appid=APPID,
        callback_token=SecretStr(TOKEN),
        encoding_aes_key=SecretStr(AES_KEY if encrypted else ""),
    )
    return settings.model_copy(update={"wechat_mp": wechat, **extra})


@pytest.fixture(params=[True, False], ids=["encrypted", "plain"])
def mode(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return wechat_settings(settings, encrypted=bool(request.param))


@pytest.fixture
def client(mode: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(mode, engine=engine)) as c:
        yield c


def sandbox_push(settings: Settings, event: str = "unsubscribe") -> tuple[str, dict[str, str]]:
    """What the provider sandbox sends for these settings (encrypted when they carry an EncodingAESKey)."""
    return event_message(SandboxState(sandbox_config(settings, "")), "oOpenid000001", {"Event": event})


def post(client: TestClient, body: str, query: dict[str, str]) -> Any:
    headers = {"Content-Type": "text/xml"}
    return client.post("/callbacks/wechat_mp", params=query, content=body.encode(), headers=headers)


def test_a_push_is_accepted_once(client: TestClient, mode: Settings) -> None:
    body, query = sandbox_push(mode)
    assert ("encrypt_type" in query) == bool(mode.wechat_mp.encoding_aes_key.get_secret_value())
    first = post(client, body, query)
    assert first.status_code == 200 and first.text == "success"
    replay = post(client, body, query)
    assert replay.status_code == 401 and "nonce" in replay.json()["error"]["message"]


def test_a_stale_or_future_timestamp_is_refused(client: TestClient, mode: Settings) -> None:
    xml = event_xml({"ToUserName": "gh_1", "FromUserName": "oOpenid000001", "MsgType": "event", "Event": "subscribe"})
    for offset in (-301 - 5, 301 + 5):
        timestamp, nonce = str(int(time.time()) + offset), f"n{offset}"
        query = {"signature": callback_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = xml
        if mode.wechat_mp.encoding_aes_key.get_secret_value():
            body, msg_signature = encrypted_push(WechatCipher(AES_KEY, APPID), TOKEN, xml, "gh_1", timestamp, nonce)
            query.update({"encrypt_type": "aes", "msg_signature": msg_signature})
        refused = post(client, body, query)
        assert refused.status_code == 401 and "±5" in refused.json()["error"]["message"], offset


def test_encrypted_mode_binds_the_body(settings: Settings, engine: Engine) -> None:
    encrypted = wechat_settings(settings, encrypted=True)
    with TestClient(create_app(encrypted, engine=engine)) as client:
        body_a, query_a = sandbox_push(encrypted, "subscribe")
        body_b, _query_b = sandbox_push(encrypted, "unsubscribe")
        swapped = post(client, body_b, query_a)  # a captured signature over another body
        assert swapped.status_code == 401 and "msg_signature" in swapped.json()["error"]["message"]
        plain_body, plain_query = sandbox_push(wechat_settings(settings, encrypted=False))
        plain = post(client, plain_body, plain_query)  # the plain signature alone is not enough
        assert plain.status_code == 401 and "encrypted" in plain.json()["error"]["message"]
        other_app = WechatCipher(AES_KEY, "wx-another-account")
        timestamp, nonce = str(int(time.time())), "n-other"
        body, msg_signature = encrypted_push(other_app, TOKEN, "<xml/>", "gh_1", timestamp, nonce)
        query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes", "msg_signature": msg_signature}
        assert post(client, body, query).status_code == 401
        assert post(client, body_a, query_a).status_code == 200


def test_replay_is_refused_by_another_process_through_redis(
    settings: Settings, engine: Engine, redis_url: str, queue_name: str
) -> None:
    shared = wechat_settings(settings, encrypted=True, redis_url=redis_url, queue_name=queue_name)
    body, query = sandbox_push(shared)
    first_app, second_app = create_app(shared, engine=engine), create_app(shared, engine=engine)
    with TestClient(first_app) as first, TestClient(second_app) as second:
        assert post(first, body, query).status_code == 200
        assert post(second, body, query).status_code == 401
