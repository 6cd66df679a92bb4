"""Escalation's voice step: a call when the SMS did not reach the person, or when an urgent notice stays unread."""

from __future__ import annotations

import time
from collections.abc import Iterator

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
from tests.govconnect.notices.test_escalation import wait

PEOPLE = (("钱处长", "qiancz", "13800000021"), ("孙科员", "sunky", "13800000022"), ("周干事", "zhougs", "13800000023"))
MORE = (("陈主任", "chenzr", "13800000024"), ("褚科长", "chukz", "13800000025"), ("卫干事", "weigs", "13800000026"))


@pytest.fixture
def gateway(pipeline_settings: Settings, engine: Engine) -> Iterator[Gateway]:
    """The escalation gateway, sending one SMS per provider request (so a fault hits one person)."""
    sock = bind_loopback()
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", sock.getsockname()[1])
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05, "dingtalk_read_after": 3600}),
            "notices": settings.notices.model_copy(update={"sweep_interval_seconds": 0.2, "send_chunk": 1}),
            "dingtalk": settings.dingtalk.model_copy(update={"status_poll_seconds": 0.2}),
        }
    )
    server = run_in_thread(create_app(settings, engine=engine), sock=sock)
    try:
        yield Gateway(server.url, server.url + settings.sandbox.mount_path, settings)
    finally:
        server.stop()


def _staff(session: Session, dept_name: str, people: tuple[tuple[str, str, str], ...]) -> int:
    dept = Department(name=dept_name, path=dept_name)
    session.add(dept)
    session.flush()
    for name, userid, mobile in people:
        session.add(Contact(name=name, department_id=dept.id or 0, mobile=mobile, dingtalk_userid=userid))
    session.commit()
    return dept.id or 0


def _called(client: httpx.Client, url: str, auth: dict[str, str]) -> list[str]:
    """Numbers of the notice's voice deliveries the provider took (sent, or delivered by its report)."""
    items = client.get(f"{url}/deliveries", params={"channel": "voice"}, headers=auth).json()["items"]
    return sorted(d["recipient"] for d in items if d["status"] in ("sent", "delivered"))


def test_failed_sms_is_followed_by_one_call_and_urgent_unread_people_are_called(
    gateway: Gateway,
    session: Session,
    agency: Agency,
) -> None:
    dept = _staff(session, "应急值班室", PEOPLE)
    key = make_key(session, agency, ["notices:send", "notices:read"]).key
    auth = {"Authorization": f"Bearer {key}"}
    body = {
        "title": "值班调整",
        "body": "本周六值班调整，请留意。",
        "category": "yjyj",
        "urgency": "urgent",  # (normal SMS and calls wait out quiet hours)
        "channels": ["dingtalk"],
        "audience": {"staff": {"departments": [dept]}},
        "escalation": {"after_minutes": 0.05, "voice_after_minutes": 30},  # SMS after 3 s
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        bad = client.post(
            "/api/v1/notices", json={**body, "escalation": {"after_minutes": 5, "voice_after_minutes": 1}}, headers=auth
        )
        assert bad.status_code == 422 and "error" in bad.json()
        # The first SMS the sandbox takes is reported undelivered.
        client.post(
            f"{gateway.sandbox}/_sandbox/faults", json={"provider": "aliyun_sms", "kind": "fail_reports", "count": 1}
        )
        r = client.post("/api/v1/notices", json=body, headers=auth)
        assert r.status_code == 202, r.text
        url = f"/api/v1/notices/{r.json()['id']}"
        wait(
            lambda: client.post(f"{gateway.sandbox}/_sandbox/dingtalk/read", json={"users": ["qiancz"]}).json()["read"]
        )
        wait(lambda: client.get(url, headers=auth).json()["escalation"]["voice"] == 1)
        sms = client.get(f"{url}/deliveries", params={"channel": "sms"}, headers=auth).json()["items"]
        failed = [d["recipient"] for d in sms if d["status"] == "failed"]
        assert len(sms) == 2 and len(failed) == 1
        wait(lambda: _called(client, url, auth) == failed)
        time.sleep(0.6)  # more sweeps: nobody is called twice, nobody else before 30 minutes
        notice = client.get(url, headers=auth).json()
        assert notice["escalate_voice_after_seconds"] == 1800
        assert notice["escalation"] | {"open": 0} == {
            "people": 3,
            "reached": 3,
            "read": 1,
            "sms": 2,
            "voice": 1,
            "open": 0,
        }
        assert notice["progress"]["voice"]["total"] == 1 and _called(client, url, auth) == failed
        # Every delivery so far is final, but the SMS-reached person is still owed a call at 30 minutes:
        # the notice stays `sending` (and so can still be cancelled, which stops the call).
        assert notice["status"] == "sending" and notice["completed_at"] is None
        assert client.post(f"{url}/cancel", headers=auth).status_code == 200

        # Whoever has not read an urgent notice after the voice wait is called, though the SMS arrived.
        more = _staff(session, "应急备勤组", MORE)
        urgent = {
            **body,
            "title": "紧急集合",
            "audience": {"staff": {"departments": [more]}},
            "escalation": {"after_minutes": 0.05, "voice_after_minutes": 0.05},
        }
        r = client.post("/api/v1/notices", json=urgent, headers=auth)
        assert r.status_code == 202, r.text
        url = f"/api/v1/notices/{r.json()['id']}"
        wait(
            lambda: client.post(f"{gateway.sandbox}/_sandbox/dingtalk/read", json={"users": ["chenzr"]}).json()["read"]
        )
        done = wait(
            lambda: (lambda n: n if n["escalation"]["voice"] == 2 else None)(client.get(url, headers=auth).json())
        )
        assert done["escalation"]["sms"] == 2 and done["escalation"]["read"] == 1
        voice = client.get(f"{url}/deliveries", params={"channel": "voice"}, headers=auth).json()["items"]
        assert sorted(d["recipient"] for d in voice) == ["138****0025", "138****0026"]  # masked
        # Once the calls are reported, nothing more can follow: the notice completes.
        finished = wait(
            lambda: (lambda n: n if n["status"] == "completed" else None)(client.get(url, headers=auth).json())
        )
        assert finished["escalation"]["open"] == 0 and finished["progress"]["voice"]["delivered"] == 2
