"""A DingTalk work notice to staff through the API, the in-process worker and the sandbox: delivered, then read."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from channels.sandbox.runner import bind_loopback, run_in_thread
from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from govconnect.app import create_app
from govconnect.providers.sandbox import use_demo_sandbox
from govconnect.settings import Settings
from tests.factories import make_key
from tests.govconnect.notices.test_end_to_end import Gateway


@pytest.fixture
def gateway(pipeline_settings: Settings, engine: Engine) -> Iterator[Gateway]:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", port)
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05, "dingtalk_read_after": 0}),
            "notices": settings.notices.model_copy(update={"sweep_interval_seconds": 0.2}),
            "dingtalk": settings.dingtalk.model_copy(update={"status_poll_seconds": 0.2}),
        }
    )
    server = run_in_thread(create_app(settings, engine=engine), sock=sock)
    try:
        yield Gateway(server.url, server.url + settings.sandbox.mount_path, settings)
    finally:
        server.stop()


def seed_staff(session: Session) -> int:
    dept = Department(name="防汛办", path="防汛办")
    session.add(dept)
    session.flush()
    for name, userid in (("王科长", "wangkz"), ("李干事", "ghost01"), ("赵主任", "")):
        session.add(Contact(name=name, department_id=dept.id or 0, mobile="", dingtalk_userid=userid))
    session.commit()
    return dept.id or 0


def wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_dingtalk_notice_is_delivered_then_read(gateway: Gateway, session: Session, agency: Agency) -> None:
    dept = seed_staff(session)
    # contacts:write: the deliveries show staff user ids unmasked.
    auth = {
        "Authorization": f"Bearer {make_key(session, agency, ['notices:send', 'notices:read', 'contacts:write']).key}"
    }
    body = {
        "title": "防汛会商",
        "body": "((name))：今晚 8 点防汛会商，请准时参加。",
        "category": "yjyj",
        "channels": ["dingtalk"],
        "audience": {"staff": {"departments": [dept]}},
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        client.post(f"{gateway.sandbox}/_sandbox/dingtalk/invalid_users", json={"users": ["ghost01"]})
        r = client.post("/api/v1/notices", json=body, headers={**auth, "Idempotency-Key": "dt-1"})
        assert r.status_code == 202, r.text
        assert r.json()["recipient_count"] == 2  # 赵主任 has no DingTalk id
        url = f"/api/v1/notices/{r.json()['id']}"

        def settled() -> dict[str, Any] | None:
            notice = client.get(url, headers=auth).json()
            progress = notice["progress"].get("dingtalk", {})
            done = progress.get("delivered") == 1 and progress.get("failed") == 1
            return notice if done and notice["status"] == "completed" else None

        notice = wait(settled)
        assert notice["progress"]["dingtalk"]["read"] == 0
        deliveries = {d["recipient"]: d for d in client.get(f"{url}/deliveries", headers=auth).json()["items"]}
        assert deliveries["wangkz"]["status"] == "delivered" and deliveries["wangkz"]["read_at"] is None
        assert (deliveries["ghost01"]["status"], deliveries["ghost01"]["error_code"]) == ("failed", "invalid")
        sent = client.get(f"{gateway.sandbox}/_sandbox/messages", params={"provider": "dingtalk"}).json()
        card = next(m for m in sent["messages"] if m["recipient"] == "wangkz")
        assert card["action"] == "action_card" and "王科长：今晚 8 点" in card["text"]

        marked = client.post(f"{gateway.sandbox}/_sandbox/dingtalk/read", json={"users": ["wangkz"]})
        assert marked.json() == {"read": 1}
        wait(lambda: client.get(url, headers=auth).json()["progress"]["dingtalk"]["read"] == 1)
        deliveries = {d["recipient"]: d for d in client.get(f"{url}/deliveries", headers=auth).json()["items"]}
        assert deliveries["wangkz"]["status"] == "delivered" and deliveries["wangkz"]["read_at"] is not None
        assert deliveries["ghost01"]["read_at"] is None


def test_dingtalk_reaches_staff_only(gateway: Gateway, agency: Agency, auth: dict[str, str]) -> None:
    body = {
        "title": "通知",
        "body": "内容",
        "category": "yjyj",
        "channels": ["dingtalk"],
        "audience": {"subscribers": {"categories": ["yjyj"]}},
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post("/api/v1/notices", json=body, headers={**auth, "Idempotency-Key": "dt-2"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_audience"
    assert "浙政钉" in r.json()["error"]["message"]
