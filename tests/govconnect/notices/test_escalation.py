"""A meeting notice to staff: DingTalk first, unread after the (shortened) window → SMS, replies 1/2 tallied."""

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

PEOPLE = (("王科长", "wangkz", "13800000011"), ("李干事", "ligs", "13800000012"), ("赵主任", "zhaozr", "13800000013"))


@pytest.fixture
def gateway(pipeline_settings: Settings, engine: Engine) -> Iterator[Gateway]:
    sock = bind_loopback()
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", sock.getsockname()[1])
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05, "dingtalk_read_after": 3600}),
            "notices": settings.notices.model_copy(update={"sweep_interval_seconds": 0.2}),
            "dingtalk": settings.dingtalk.model_copy(update={"status_poll_seconds": 0.2}),
        }
    )
    server = run_in_thread(create_app(settings, engine=engine), sock=sock)
    try:
        yield Gateway(server.url, server.url + settings.sandbox.mount_path, settings)
    finally:
        server.stop()


def wait(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_unread_dingtalk_notice_goes_by_sms_and_replies_are_tallied(
    gateway: Gateway, session: Session, agency: Agency
) -> None:
    dept = Department(name="防汛办", path="防汛办")
    session.add(dept)
    session.flush()
    for name, userid, mobile in PEOPLE:
        session.add(Contact(name=name, department_id=dept.id or 0, mobile=mobile, dingtalk_userid=userid))
    session.commit()
    key = make_key(session, agency, ["notices:send", "notices:read", "contacts:write"]).key
    auth = {"Authorization": f"Bearer {key}"}
    body = {
        "title": "防汛会商",
        "body": "今晚8点在应急局三楼防汛会商。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["dingtalk"],
        "audience": {"staff": {"departments": [dept.id]}},
        "replies": "attendance",
        "escalation": {"after_minutes": 0.1},  # 6 s in this test
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        refused = client.post("/api/v1/notices", json={**body, "channels": ["sms"]}, headers=auth)
        assert refused.status_code == 422  # nothing to escalate from
        r = client.post("/api/v1/notices", json=body, headers=auth)
        assert r.status_code == 202, r.text
        notice_id = r.json()["id"]
        url = f"/api/v1/notices/{notice_id}"
        # 王科长 reads it in DingTalk as soon as it has reached him: he is not texted.
        wait(
            lambda: client.post(f"{gateway.sandbox}/_sandbox/dingtalk/read", json={"users": ["wangkz"]}).json()["read"]
        )
        wait(lambda: client.get(url, headers=auth).json()["progress"]["dingtalk"]["read"] == 1)
        progress = wait(
            lambda: (lambda p: p if p.get("sms", {}).get("delivered") == 2 else None)(
                client.get(url, headers=auth).json()["progress"]
            )
        )
        assert progress["dingtalk"]["delivered"] == 3 and progress["sms"]["total"] == 2
        deliveries = client.get(f"{url}/deliveries", params={"channel": "sms"}, headers=auth).json()["items"]
        assert sorted(d["recipient"] for d in deliveries) == ["13800000012", "13800000013"]
        inbox = client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": "13800000012"}).json()
        assert "回复1确认参加" in str(inbox) and "wangkz" not in str(inbox)
        assert not client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": "13800000011"}).json()[
            "messages"
        ]
        # Another sweep or two escalate nobody twice.
        time.sleep(0.5)
        assert client.get(url, headers=auth).json()["progress"]["sms"]["total"] == 2
        for phone, text in (("13800000012", "1"), ("13800000013", "2")):
            client.post(f"{gateway.sandbox}/_sandbox/sms/reply", json={"phone": phone, "content": text, "wait": True})
        tally = client.get(f"{url}/replies", headers=auth).json()["attendance"]
        # 王科长 read it in DingTalk but has not said whether he comes: the organiser still sees him.
        assert (tally["attend"], tally["decline"], tally["unanswered"]) == (1, 1, 1)
