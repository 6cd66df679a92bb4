"""Retraction and correction on both databases (API level, with scripted providers)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.audit.record import Actor
from govconnect.clock import utcnow
from govconnect.governance.retraction import retract
from govconnect.notices.pipeline_models import Delivery
from tests.factories import make_agency, make_key, make_subscriber
from tests.govconnect.notices.conftest import drain, wait_for
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_pending_index import sms_notice_to
from tests.govconnect.notices.test_pipeline import deliveries


def _key(session: Session, agency: Agency, scopes: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(session, agency, scopes).key}"}


def _public_notice(client: TestClient, headers: dict[str, str], **over: object) -> str:
    body: dict[str, object] = {
        "title": "停水通知",
        "body": "明日 9:00 起柯城区部分路段停水。",
        "category": "yjyj",
        "channels": ["site", "tv"],
    }
    body.update(over)
    r = client.post("/api/v1/notices", json=body, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_retract_withdraws_everywhere_and_the_page_answers_410(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    notice_id = _public_notice(app_client, auth)
    wait_for(lambda: app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["status"] == "completed")
    assert "停水通知" in app_client.get("/m/").text
    etag = app_client.get("/feeds/tv.json").headers["etag"]

    empty = app_client.post(f"/api/v1/notices/{notice_id}/retract", json={"reason": ""}, headers=auth)
    assert empty.status_code == 422
    r = app_client.post(f"/api/v1/notices/{notice_id}/retract", json={"reason": "停水时间有误"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "retracted" and r.json()["retracted_reason"] == "停水时间有误"
    page = app_client.get(f"/m/notices/{notice_id}")
    assert page.status_code == 410 and "停水时间有误" in page.text and "已撤回" in page.text
    assert "停水通知" not in app_client.get("/m/").text
    feed = app_client.get("/feeds/tv.json")
    assert feed.headers["etag"] != etag and notice_id not in feed.text
    again = app_client.post(f"/api/v1/notices/{notice_id}/retract", json={"reason": "再撤"}, headers=auth)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


async def test_retract_cancels_deliveries_not_yet_handed_over(
    ctx: dict[str, Any], session: Session, agency: Agency, fake_providers: dict[str, ScriptedChannel]
) -> None:
    notice = await sms_notice_to(ctx, session, agency, [f"1380000000{i}" for i in range(3)])  # queued, not sent
    retract(session, agency, notice.id, Actor.cli(agency.id), "发错了", utcnow())
    await drain(ctx)
    assert {d.status for d in deliveries(session, notice.id)} == {"cancelled"}
    assert fake_providers["aliyun_sms"].sent == []
    session.refresh(notice)
    assert notice.status == "retracted" and notice.retracted_reason == "发错了"


def test_another_agencys_notice_is_not_found(app_client: TestClient, session: Session, auth: dict[str, str]) -> None:
    notice_id = _public_notice(app_client, auth)
    other = _key(session, make_agency(session, code="qz-other"), ["notices:send", "notices:read"])
    for path, body in (("retract", {"reason": "x"}), ("correct", {"title": "t", "body": "b", "channels": ["site"]})):
        r = app_client.post(f"/api/v1/notices/{notice_id}/{path}", json=body, headers=other)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


def test_correct_links_both_ways_and_needs_its_own_approval(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    original = _public_notice(
        app_client, auth, channels=["site", "sms"], audience={"subscribers": {}}, urgency="urgent"
    )
    wait_for(
        lambda: (
            app_client.get(f"/api/v1/notices/{original}", headers=auth).json()["progress"].get("sms", {}).get("sent")
            == 1
        )
    )
    admin = _key(session, agency, ["admin"])
    app_client.put("/api/v1/agencies/me/policy", json={"require_approval": "public"}, headers=admin)
    body = {
        "title": "更正：停水通知",
        "body": "停水时间改为 10:00。",
        "category": "yjyj",
        "channels": ["site"],
        "resend": True,
    }
    r = app_client.post(f"/api/v1/notices/{original}/correct", json=body, headers=auth)
    assert r.status_code == 202 and r.json()["status"] == "pending_approval"
    correction = r.json()
    assert correction["corrects_id"] == original and set(correction["channels"]) == {"site", "sms"}
    assert "已更正" not in app_client.get(f"/m/notices/{original}").text  # not before the correction is out
    approved = app_client.post(
        f"/api/v1/notices/{correction['id']}/approve", headers=_key(session, agency, ["notices:approve"])
    )
    assert approved.status_code == 200
    wait_for(lambda: "已更正" in app_client.get(f"/m/notices/{original}").text)
    assert f"/m/notices/{correction['id']}" in app_client.get(f"/m/notices/{original}").text
    wait_for(lambda: len(session.exec(select(Delivery).where(Delivery.notice_id == correction["id"])).all()) == 1)
    draft = app_client.post(
        "/api/v1/notices", json={"title": "t", "body": "b", "channels": ["site"]}, headers=auth
    ).json()
    not_out = app_client.post(f"/api/v1/notices/{draft['id']}/correct", json=body, headers=auth)
    assert not_out.status_code == 409 and not_out.json()["error"]["code"] == "not_correctable"
