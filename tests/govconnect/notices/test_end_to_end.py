"""End to end through real HTTP: the API, the in-process worker, the provider sandbox and its receipts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from channels.sandbox.runner import bind_loopback, run_in_thread
from govconnect.agencies.models import Agency
from govconnect.app import create_app
from govconnect.citizens.models import Subscriber
from govconnect.providers.channel_factory import callback_token
from govconnect.providers.sandbox import use_demo_sandbox
from govconnect.settings import Settings
from tests.factories import make_subscriber
from tests.govconnect.notices.test_notices_api import notice_body


@dataclass
class Gateway:
    url: str
    sandbox: str
    settings: Settings


@pytest.fixture
def gateway(pipeline_settings: Settings, engine: Engine) -> Iterator[Gateway]:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", port)
    settings = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05})})
    server = run_in_thread(create_app(settings, engine=engine), sock=sock)
    try:
        yield Gateway(server.url, server.url + settings.sandbox.mount_path, settings)
    finally:
        server.stop()


def wait_progress(client: httpx.Client, url: str, auth: dict[str, str], done: int, timeout: float = 20) -> dict:  # type: ignore[type-arg]
    end = time.monotonic() + timeout
    body: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < end:
        body = client.get(url, headers=auth).json()
        final = sum(p["delivered"] + p["failed"] for p in body["progress"].values())
        if final >= done and body["status"] == "completed":
            return body
        time.sleep(0.1)
    raise AssertionError(f"not finished: {body}")


def test_notice_delivered_through_sandbox_with_receipts(
    gateway: Gateway, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", "oDemo-0001", regions=["江山市"], name="张三")
    make_subscriber(session, "13800000002", "oDemo-0002", regions=["江山市"], name="李四")
    make_subscriber(session, "13800010000", None, regions=["江山市"], channels=["sms"])  # sandbox fails *0000
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post("/api/v1/notices", json=notice_body(), headers={**auth, "Idempotency-Key": "e2e"})
        assert r.status_code == 202, r.text
        body = wait_progress(client, f"/api/v1/notices/{r.json()['id']}", auth, done=5)
        assert body["progress"]["sms"]["delivered"] == 2 and body["progress"]["sms"]["failed"] == 1
        assert body["progress"]["wechat"]["delivered"] == 2, body["progress"]
        received = client.get(f"{gateway.sandbox}/_sandbox/messages").json()["messages"]
        accepted = sorted((m["provider"], m["recipient"]) for m in received if not m.get("error"))
        assert len(accepted) == len(set(accepted)) == 5  # every person once per channel
        inbox = client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": "13800000001"}).json()
        assert "张三您好" in str(inbox)


def test_receipt_routes_authenticate_and_opt_out(gateway: Gateway, session: Session) -> None:
    make_subscriber(session, "13800000003", "oid-3")
    token = callback_token(gateway.settings)
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        report = [{"out_id": "f" * 32, "biz_id": "1", "success": True, "phone_number": "13800000003"}]
        assert client.post("/callbacks/aliyun_sms/report", json=report).status_code == 401
        assert client.post("/callbacks/aliyun_sms/report?token=wrong", json=report).status_code == 401
        ok = client.post(f"/callbacks/aliyun_sms/report?token={token}", json=report)
        assert ok.status_code == 200 and ok.json()["code"] == 0  # unknown reference: accepted, ignored
        bad = client.post(f"/callbacks/aliyun_sms/report?token={token}", content=b"{nope")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
        assert client.post("/callbacks/wechat_mp?signature=x&timestamp=1&nonce=2", content=b"<xml/>").status_code == 401
        client.post(
            f"{gateway.sandbox}/_sandbox/sms/reply", json={"phone": "13800000003", "content": "TD", "wait": True}
        )
    session.expire_all()
    sub = session.exec(select(Subscriber).where(Subscriber.phone == "13800000003")).one()
    assert sub.status == "unsubscribed"


def test_wechat_unfollow_event(gateway: Gateway, session: Session) -> None:
    make_subscriber(session, None, "oDemo-follow", channels=["wechat"])
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post(
            f"{gateway.sandbox}/_sandbox/wechat/follow",
            json={"openid": "oDemo-follow", "event": "unsubscribe", "wait": True},
        )
        assert r.status_code == 200, r.text
    session.expire_all()
    assert session.exec(select(Subscriber)).one().status == "unsubscribed"
