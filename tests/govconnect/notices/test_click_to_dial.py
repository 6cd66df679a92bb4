"""Click-to-dial (双呼) through the gateway and its in-process sandbox: staff pages and the operators' API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from channels.sandbox.runner import bind_loopback, run_in_thread
from channels.sandbox.state import SandboxState
from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_agency, create_staff
from govconnect.app import create_app
from govconnect.audit.models import AuditEntry
from govconnect.calls.models import DialCall
from govconnect.providers.sandbox import use_demo_sandbox
from govconnect.settings import Settings
from tests.factories import make_key, make_subscriber
from tests.govconnect.notices.test_end_to_end import Gateway, wait_progress
from tests.govconnect.notices.test_notices_api import notice_body

STAFF_PHONE = "13700137000"


@dataclass
class DialGateway(Gateway):
    state: SandboxState  # the in-process sandbox's memory


@pytest.fixture
def gateway(pipeline_settings: Settings, engine: Engine) -> Iterator[DialGateway]:
    sock = bind_loopback()
    settings = use_demo_sandbox(pipeline_settings, "127.0.0.1", sock.getsockname()[1])
    settings = settings.model_copy(
        update={
            "sandbox": settings.sandbox.model_copy(update={"report_delay": 0.05}),
            "aliyun_voice": settings.aliyun_voice.model_copy(update={"dial_limit": "3/hour"}),
        }
    )
    app = create_app(settings, engine=engine)
    server = run_in_thread(app, sock=sock)
    try:
        yield DialGateway(server.url, server.url + settings.sandbox.mount_path, settings, app.state.provider_sandbox)
    finally:
        server.stop()


def wait(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


@contextmanager
def signed_in(url: str, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as client:
        token = csrf(client.get("/m/login").text)
        r = client.post("/m/login", data={"username": username, "password": "correct-horse-1", "csrf": token})
        assert r.status_code == 200, r.text
        yield client


def seed(session: Session, agency: Agency) -> dict[str, int]:
    dept = Department(name="值班室", path="值班室")
    session.add(dept)
    session.flush()
    ids = {}
    for name, mobile, office in (("王强", "13905709999", ""), ("李娜", "", "0570-3011111"), ("赵六", "", "")):
        contact = Contact(name=name, department_id=dept.id or 0, mobile=mobile, office_phone=office)
        session.add(contact)
        session.flush()
        ids[name] = contact.id or 0
    staff = create_staff(session, "wangli", agency, "staff", "correct-horse-1", "王丽")
    staff.phone = STAFF_PHONE
    create_staff(session, "nophone", agency, "staff", "correct-horse-1", "无号")
    session.commit()
    return ids


def call_status(client: httpx.Client, path: str) -> str:
    match = re.search(r'data-status="(\w+)"', client.get(path).text)
    assert match
    return match.group(1)


def test_staff_dials_a_contact_through_the_government_number(
    gateway: Gateway, session: Session, agency: Agency
) -> None:
    ids = seed(session, agency)
    with signed_in(gateway.url, "wangli") as client:
        card = client.get(f"/m/staff/contacts/{ids['王强']}").text
        assert "通过政务号码拨打" in card and f'action="/m/staff/contacts/{ids["王强"]}/dial"' in card
        assert "通过政务号码拨打" not in client.get(f"/m/staff/contacts/{ids['赵六']}").text  # no number
        token = csrf(card)
        refused = client.post(f"/m/staff/contacts/{ids['王强']}/dial", data={})
        assert refused.status_code == 400  # no CSRF token
        r = client.post(f"/m/staff/contacts/{ids['王强']}/dial", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/m/staff/calls/dial_")
        page = r.headers["location"]
        assert wait(lambda: call_status(client, page) == "answered")
        assert "通话已结束" in client.get(page).text
        # The provider rang our staff member first, then the contact, both seeing the government number.
        sent = client.get(f"{gateway.sandbox}/_sandbox/messages", params={"provider": "aliyun_voice"}).json()
        [dial] = [m for m in sent["messages"] if m["action"] == "ClickToDial"]
        assert dial["recipient"] == "13905709999" and dial["reference"] == page.rsplit("/", 1)[1]
        # An office number is dialled as digits.
        r = client.post(f"/m/staff/contacts/{ids['李娜']}/dial", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303
        sent = client.get(f"{gateway.sandbox}/_sandbox/messages", params={"provider": "aliyun_voice"}).json()
        assert "05703011111" in [m["recipient"] for m in sent["messages"]]
        # The limit (3 an hour in this test) counts per staff member.
        client.post(f"/m/staff/contacts/{ids['王强']}/dial", data={"csrf": token}, follow_redirects=False)
        over = client.post(f"/m/staff/contacts/{ids['王强']}/dial", data={"csrf": token}, follow_redirects=False)
        assert over.status_code == 429 and "拨打次数已达上限" in over.text
    with signed_in(gateway.url, "nophone") as other:
        assert other.get(page).status_code == 404  # another staff member's call
        card = other.get(f"/m/staff/contacts/{ids['王强']}").text
        r = other.post(f"/m/staff/contacts/{ids['王强']}/dial", data={"csrf": csrf(card)}, follow_redirects=False)
        assert r.status_code == 409 and "未登记手机号码" in r.text
    session.expire_all()
    audits = session.exec(select(AuditEntry).where(AuditEntry.action == "click_to_dial")).all()
    assert len(audits) == 3  # one per call placed (not the refused ones)
    assert {(a.target_type, a.target_id) for a in audits} == {
        ("contact", str(ids["王强"])),
        ("contact", str(ids["李娜"])),
    }
    assert "13905709999" not in str([a.changes for a in audits])


def test_cancel_a_ringing_call(gateway: DialGateway, session: Session, agency: Agency, engine: Engine) -> None:
    ids = seed(session, agency)
    with signed_in(gateway.url, "wangli") as client:
        token = csrf(client.get(f"/m/staff/contacts/{ids['王强']}").text)
        # Hold the report back: the call is still ringing when the staff member hangs up.
        gateway.state.config.report_delay = 2.0
        r = client.post(f"/m/staff/contacts/{ids['王强']}/dial", data={"csrf": token}, follow_redirects=False)
        page = r.headers["location"]
        assert call_status(client, page) == "calling"
        assert 'http-equiv="refresh"' in client.get(page).text
        r = client.post(f"{page}/cancel", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303
        assert wait(lambda: call_status(client, page) == "cancelled")
        assert client.post(f"{page}/cancel", data={"csrf": token}).status_code == 409  # over
        with Session(engine) as s:
            assert s.get(DialCall, page.rsplit("/", 1)[1]).status == "cancelled"  # type: ignore[union-attr]


def test_operator_calls_a_recipient_by_delivery_id(
    gateway: Gateway, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", None, regions=["江山市"], channels=["sms"])
    make_subscriber(session, "13800001111", None, regions=["江山市"], channels=["sms"])  # busy in the sandbox
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post("/api/v1/notices", json=notice_body(channels=["sms"]), headers=auth)
        notice_id = r.json()["id"]
        wait_progress(client, f"/api/v1/notices/{notice_id}", auth, done=2)
        deliveries = {
            d["recipient"]: d["id"]
            for d in client.get(f"/api/v1/notices/{notice_id}/deliveries", headers=auth).json()["items"]
        }
        outcomes = {}
        for number, delivery_id in deliveries.items():
            r = client.post(
                "/api/v1/calls", json={"delivery_id": delivery_id, "caller_number": STAFF_PHONE}, headers=auth
            )
            assert r.status_code == 202, r.text
            call = r.json()
            assert call["status"] == "calling" and call["target_id"] == delivery_id
            assert "1380000" not in r.text  # the citizen's number never comes back
            outcomes[number] = wait(
                lambda c=call: (lambda b: b if b["status"] != "calling" else None)(
                    client.get(f"/api/v1/calls/{c['id']}", headers=auth).json()
                )
            )
        # The deliveries show the numbers masked to this key: 138****0001 answers, 138****1111 is busy.
        assert outcomes["138****0001"]["status"] == "answered"
        assert (outcomes["138****1111"]["status"], outcomes["138****1111"]["leg"]) == ("busy", "callee")
        # Errors: another agency's delivery, an unknown one, a bad caller number, a missing scope.
        other = create_agency(session, "另一个局", "qz-other", "衢州市")
        session.commit()
        other_auth = {"Authorization": f"Bearer {make_key(session, other, ['notices:send', 'notices:read']).key}"}
        some = next(iter(deliveries.values()))
        r = client.post("/api/v1/calls", json={"delivery_id": some, "caller_number": STAFF_PHONE}, headers=other_auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert client.get(f"/api/v1/calls/{outcomes['138****0001']['id']}", headers=other_auth).status_code == 404
        r = client.post("/api/v1/calls", json={"delivery_id": "x" * 32, "caller_number": STAFF_PHONE}, headers=auth)
        assert r.status_code == 404
        r = client.post("/api/v1/calls", json={"delivery_id": some, "caller_number": "12345678901"}, headers=auth)
        assert r.status_code == 422 and "error" in r.json()
        reader = {"Authorization": f"Bearer {make_key(session, agency, ['notices:read']).key}"}
        r = client.post("/api/v1/calls", json={"delivery_id": some, "caller_number": STAFF_PHONE}, headers=reader)
        assert r.status_code == 403
