"""The suppression list and the daily SMS cap: held back at fan-out, visible in progress, audited API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from govconnect.citizens.optout import handle_sms_reply
from govconnect.citizens.subscriptions import purge_inactive
from govconnect.message_templates.senders import save_sender
from govconnect.notices.pipeline_models import Delivery
from govconnect.settings import Settings
from govconnect.suppression import service
from govconnect.suppression.models import Suppression
from tests.factories import make_agency, make_key, make_subscriber
from tests.govconnect.notices.conftest import wait_for
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_audience_files import daytime, upload
from tests.govconnect.notices.test_end_to_end import Gateway, gateway, wait_progress  # noqa: F401
from tests.govconnect.notices.test_notices_api import notice_body

SECRET = "test-secret-key-0123456789"  # the `settings` fixture's key


def progress(client: TestClient, auth: dict[str, str], notice_id: str) -> dict[str, Any]:
    return client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["progress"]  # type: ignore[no-any-return]


def send(client: TestClient, auth: dict[str, str], **over: Any) -> str:
    r = client.post("/api/v1/notices", json=notice_body(**over), headers=auth)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_sms_reply_suppresses_every_audience(
    app_client: TestClient,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
    fake_providers: dict[str, ScriptedChannel],
) -> None:
    daytime(app_client)
    make_subscriber(session, "13800000001", None, name="张三", channels=["sms", "voice"])
    make_subscriber(session, "13800000002", None, name="李四", channels=["sms"])
    office = Department(name="市府办", path="市府办")
    session.add(office)
    session.flush()
    session.add(Contact(name="王科长", department_id=office.id or 0, mobile="13800000003"))
    session.commit()
    assert handle_sms_reply(session, "13800000003", "TD", "cmpp", secret=SECRET)  # staff number, not a subscriber
    assert handle_sms_reply(session, "+86 138 0000 0004", "退订", "aliyun_sms", secret=SECRET)  # only in a file
    session.commit()
    list_id = upload(app_client, auth, b"phone\n13800000004\n13800000005\n")["id"]
    audience = {"subscribers": {"categories": ["yjyj"]}, "staff": {"departments": [office.id]}, "lists": [list_id]}
    notice_id = send(app_client, auth, urgency="normal", channels=["sms"], body="通知", audience=audience)
    wait_for(lambda: progress(app_client, auth, notice_id).get("sms", {}).get("sent") == 3)
    sms = progress(app_client, auth, notice_id)["sms"]
    assert (sms["sent"], sms["suppressed"], sms["total"]) == (3, 2, 5)
    assert sorted(m.recipient for m in fake_providers["aliyun_sms"].sent) == [
        "13800000001",
        "13800000002",
        "13800000005",
    ]
    held = session.exec(select(Delivery).where(Delivery.status == "suppressed")).all()
    assert sorted(d.recipient for d in held) == ["13800000003", "13800000004"]
    assert {d.error_code for d in held} == {"suppressed"} and all(d.next_attempt_at is None for d in held)
    held_only = app_client.get(f"/api/v1/notices/{notice_id}/deliveries?status=suppressed", headers=auth).json()
    assert held_only["total"] == 2


def test_urgent_warnings_follow_the_agency_policy(
    app_client: TestClient,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
    fake_providers: dict[str, ScriptedChannel],
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms", "voice"])
    service.suppress(session, SECRET, "13800000001", "operator")
    session.commit()
    first = send(app_client, auth, channels=["sms", "voice"], body="预警", urgency="urgent")
    wait_for(lambda: progress(app_client, auth, first).get("voice", {}).get("suppressed") == 1)
    assert progress(app_client, auth, first)["sms"]["suppressed"] == 1
    assert fake_providers["aliyun_sms"].sent == []
    save_sender(session, agency.id or 0, "衢州市应急管理局", "", urgent_ignores=True)
    session.commit()
    second = send(app_client, auth, channels=["sms"], body="预警", urgency="urgent")
    wait_for(lambda: progress(app_client, auth, second).get("sms", {}).get("sent") == 1)
    normal = send(app_client, auth, channels=["sms"], body="通知", urgency="normal")
    wait_for(lambda: progress(app_client, auth, normal).get("sms", {}).get("suppressed") == 1)


def test_suppression_api_is_masked_scoped_and_idempotent(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    assert app_client.post("/api/v1/suppressions", json={"phone": "13800000009"}, headers=auth).status_code == 403
    r = app_client.post("/api/v1/suppressions", json={"phone": "138-0000-0009", "reason": "本人来电"}, headers=admin)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["phone"] == "138****0009" and entry["source"] == "operator"
    again = app_client.post("/api/v1/suppressions", json={"phone": "+8613800000009"}, headers=admin)
    assert again.status_code == 200 and again.json()["id"] == entry["id"]
    bad = app_client.post("/api/v1/suppressions", json={"phone": "12345678901"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_phone"
    stored = session.exec(select(Suppression)).one()
    assert "13800000009" not in stored.model_dump_json()  # only the keyed hash and a mask
    found = app_client.get("/api/v1/suppressions?phone=13800000009", headers=admin).json()
    assert found["total"] == 1 and found["items"][0]["reason"] == "本人来电"
    assert app_client.get("/api/v1/suppressions?phone=13800000008", headers=admin).json()["total"] == 0
    assert app_client.get("/api/v1/suppressions", headers=auth).status_code == 403
    assert app_client.delete(f"/api/v1/suppressions/{entry['id']}", headers=admin).status_code == 204
    assert app_client.delete(f"/api/v1/suppressions/{entry['id']}", headers=admin).status_code == 404
    assert app_client.get("/api/v1/suppressions", headers=admin).json()["total"] == 0


def test_an_agency_lifts_only_the_entries_it_added(
    app_client: TestClient, session: Session, agency: Agency, settings: Settings
) -> None:
    """The list is city-wide: another agency's entry, or a citizen's own opt-out, is not an admin's to lift (404)."""
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    other = make_agency(session, "qj-zfb", "衢江区人民政府办公室")
    other_admin = {"Authorization": f"Bearer {make_key(session, other, ['admin']).key}"}
    ours = app_client.post("/api/v1/suppressions", json={"phone": "13800000007"}, headers=admin).json()
    secret = settings.secret_key.get_secret_value()
    citizen, _ = service.suppress(session, secret, "13800000006", "sms-reply:aliyun_sms", "TD")
    session.commit()
    assert app_client.delete(f"/api/v1/suppressions/{ours['id']}", headers=other_admin).status_code == 404
    assert app_client.delete(f"/api/v1/suppressions/{citizen.id}", headers=admin).status_code == 404
    assert app_client.delete(f"/api/v1/suppressions/{ours['id']}", headers=admin).status_code == 204
    session.expire_all()
    assert [e.id for e in session.exec(select(Suppression)).all()] == [citizen.id]


def test_purged_subscribers_stay_suppressed(session: Session) -> None:
    from datetime import timedelta

    from govconnect.clock import utcnow

    make_subscriber(session, "13800000007", None, status="unsubscribed")
    from govconnect.citizens.models import Subscriber

    sub = session.exec(select(Subscriber)).one()
    sub.unsubscribed_at = utcnow() - timedelta(days=400)
    session.add(sub)
    session.commit()
    assert purge_inactive(session, 180, secret=SECRET)[0] == 1
    session.commit()
    assert session.exec(select(Subscriber)).all() == []
    entry = session.exec(select(Suppression)).one()
    assert entry.source == "purge" and entry.phone_hash == service.phone_key(SECRET, "13800000007")
    assert service.is_suppressed(session, SECRET, "13800000007")


@pytest.fixture
def capped_settings(pipeline_settings: Settings) -> Settings:
    notices = pipeline_settings.notices.model_copy(update={"daily_sms_cap": 2})
    return pipeline_settings.model_copy(update={"notices": notices})


def test_daily_cap_across_agencies(
    capped_settings: Settings, engine: Any, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    from govconnect.app import create_app
    from tests.govconnect.notices.fakes import provider_set

    fakes = {name: ScriptedChannel(name) for name in ("aliyun_sms", "cmpp", "aliyun_voice", "wechat_mp", "wecom")}
    other = make_agency(session, code="qz-jtj", name="衢州市交通运输局")
    other_auth = {"Authorization": f"Bearer {make_key(session, other, ['notices:send', 'notices:read']).key}"}
    csv_text = "phone\n13800000001\n13800000002\n"
    with TestClient(create_app(capped_settings, engine=engine)) as client:
        client.app.state.queue.ctx["providers"] = provider_set(**fakes)  # type: ignore[attr-defined]
        daytime(client)
        sent = []
        for key in (auth, other_auth, auth):
            notice_id = send(client, key, urgency="normal", channels=["sms"], body="通知", audience={"csv": csv_text})

            def settled(n: str = notice_id, k: dict[str, str] = key) -> bool:
                sms = progress(client, k, n).get("sms", {})
                return bool(sms) and sms["sent"] + sms["capped"] == 2

            wait_for(settled)
            sent.append(progress(client, key, notice_id)["sms"])
        assert [(p["sent"], p["capped"]) for p in sent] == [(2, 0), (2, 0), (0, 2)]
        urgent = send(client, auth, urgency="urgent", channels=["sms"], body="预警", audience={"csv": csv_text})
        wait_for(lambda: progress(client, auth, urgent).get("sms", {}).get("sent") == 2)  # urgent is never capped
    assert len(fakes["aliyun_sms"].sent) == 6


def test_td_reply_stops_a_number_known_only_from_an_uploaded_file(
    gateway: Gateway,  # noqa: F811
    session: Session,
    agency: Agency,
    auth: dict[str, str],
) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        r = client.post(
            "/api/v1/audiences", headers=auth, files={"file": ("f.csv", "手机号,姓名\n13800000021,张三\n".encode())}
        )
        list_id = r.json()["id"]
        body = notice_body(channels=["sms"], body="((name))您好，明日停水。", audience={"lists": [list_id]})
        first = client.post("/api/v1/notices", json=body, headers=auth).json()["id"]
        wait_progress(client, f"/api/v1/notices/{first}", auth, done=1)
        reply = client.post(
            f"{gateway.sandbox}/_sandbox/sms/reply", json={"phone": "13800000021", "content": "TD", "wait": True}
        )
        assert reply.status_code == 200 and reply.json()["status"] == 200, reply.text
        second = client.post("/api/v1/notices", json={**body, "body": "((name))您好，明日恢复供水。"}, headers=auth)
        notice_id = second.json()["id"]
        end_state: dict[str, Any] = {}

        def finished() -> bool:
            end_state.update(client.get(f"/api/v1/notices/{notice_id}", headers=auth).json())
            return end_state["status"] == "completed"

        wait_for(finished)
        assert end_state["progress"]["sms"]["suppressed"] == 1 and end_state["progress"]["sms"]["sent"] == 0
        inbox = client.get(f"{gateway.sandbox}/_sandbox/sms/inbox", params={"phone": "13800000021"}).json()
        texts = [m["text"] if isinstance(m, dict) else m for m in inbox["messages"]]
        assert len(texts) == 1 and "停水" in str(texts[0])


def test_normal_sms_to_subscribers_carry_a_signed_leave_link(
    app_client: TestClient,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
    fake_providers: dict[str, ScriptedChannel],
) -> None:
    daytime(app_client)
    subscriber_id = make_subscriber(session, "13800000001", None, name="张三", channels=["sms"])
    audience = {"subscribers": {"categories": ["yjyj"]}, "csv": "phone,name\n13800000009,李四\n"}
    send(app_client, auth, urgency="normal", channels=["sms"], body="((name))您好，明日停水。", audience=audience)
    wait_for(lambda: len(fake_providers["aliyun_sms"].sent) == 2)
    by_phone = {m.recipient: m.text for m in fake_providers["aliyun_sms"].sent}
    assert by_phone["13800000009"] == "李四您好，明日停水。"  # not a subscriber: nothing to manage
    text, _, link = by_phone["13800000001"].partition(" 退订或管理：")
    assert text == "张三您好，明日停水。"
    assert link.startswith("http://127.0.0.1:8000/m/u/") and len(link) < 60
    path = link.removeprefix("http://127.0.0.1:8000")
    page = app_client.get(path)
    assert page.status_code == 200 and "退订" in page.text
    assert 'name="csrf"' in page.text  # the page leaves only by a POST with its CSRF token
    assert "default-src" in page.headers["content-security-policy"]
    assert app_client.get(path[:-1] + ("A" if path[-1] != "A" else "B")).status_code == 404  # tampered
    from govconnect.citizens.subscriptions import subscriber_token

    assert path.endswith(subscriber_token(SECRET, subscriber_id))
