"""The notices API: accept, idempotency, validation, scoping, progress, cancel, deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.notices import service
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery
from tests.conftest import METRICS_AUTH
from tests.factories import make_agency, make_key, make_subscriber
from tests.govconnect.notices.conftest import wait_for
from tests.govconnect.notices.fakes import ScriptedChannel


def notice_body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": "防汛预警",
        "body": "((name))您好，江山市今夜有暴雨，请注意防范。",
        "category": "yjyj",
        "urgency": "urgent",
        "channels": ["sms", "wechat"],
        "audience": {"subscribers": {"categories": ["yjyj"], "regions": ["江山市"]}},
    }
    body.update(over)
    return body


def seed_people(session: Session) -> None:
    make_subscriber(session, "13800000001", "oid-1", regions=["江山市"], name="张三")
    make_subscriber(session, "13800000002", None, categories=["yjyj", "sbyl"], name="李四")  # whole city
    make_subscriber(session, "13800000003", "oid-3", regions=["柯城区"])  # other region
    make_subscriber(session, "13800000004", "oid-4", categories=["sbyl"])  # other category
    make_subscriber(session, "13800000005", "oid-5", status="unsubscribed")


def test_accept_fans_out_and_delivers(
    app_client: TestClient, session: Session, auth: dict[str, str], fake_providers: dict[str, ScriptedChannel]
) -> None:
    seed_people(session)
    r = app_client.post("/api/v1/notices", json=notice_body(), headers={**auth, "Idempotency-Key": "k1"})
    assert r.status_code == 202, r.text
    notice_id = r.json()["id"]
    assert r.json()["recipient_count"] == 2
    assert r.headers["location"] == f"/api/v1/notices/{notice_id}"

    def progressed() -> bool:
        p = app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["progress"]
        return p.get("sms", {}).get("sent") == 2 and p.get("wechat", {}).get("sent") == 1

    wait_for(progressed)
    sms = sorted(m.recipient for m in fake_providers["aliyun_sms"].sent)
    assert sms == ["13800000001", "13800000002"]
    assert {m.text for m in fake_providers["aliyun_sms"].sent} == {
        "张三您好，江山市今夜有暴雨，请注意防范。",
        "李四您好，江山市今夜有暴雨，请注意防范。",
    }
    assert [m.recipient for m in fake_providers["wechat_mp"].sent] == ["oid-1"]
    # Our delivery id is the provider's reference.
    ids = {d.id for d in session.exec(select(Delivery)).all()}
    assert {m.reference for m in fake_providers["aliyun_sms"].sent} <= ids
    metrics = app_client.get("/metrics", headers=METRICS_AUTH).text
    assert 'govconnect_deliveries_total{channel="sms",outcome="sent",provider="aliyun_sms"} 2.0' in metrics
    assert "govconnect_queue_depth" in metrics
    assert 'govconnect_delivery_attempts_total{channel="wechat",outcome="accepted",provider="wechat_mp"}' in metrics
    assert 'govconnect_delivery_send_seconds_count{channel="sms",provider="aliyun_sms"}' in metrics


def test_idempotency_same_and_different_body(app_client: TestClient, session: Session, auth: dict[str, str]) -> None:
    seed_people(session)
    h = {**auth, "Idempotency-Key": "same"}
    first = app_client.post("/api/v1/notices", json=notice_body(), headers=h)
    again = app_client.post("/api/v1/notices", json=notice_body(), headers=h)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = app_client.post("/api/v1/notices", json=notice_body(title="不同"), headers=h)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert len(session.exec(select(Notice)).all()) == 1


def test_validation_errors(app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]) -> None:
    seed_people(session)

    def post(**over: object) -> tuple[int, str]:
        r = app_client.post("/api/v1/notices", json=notice_body(**over), headers=auth)
        assert r.headers["content-type"].startswith("application/json")
        return r.status_code, r.json().get("error", {}).get("code", "")

    assert post(channels=["sms", "fax"]) == (422, "unknown_channel")
    assert post(body="((nickname))您好") == (422, "unknown_placeholder")
    assert post(audience={"subscribers": {"categories": ["zwgk"]}}) == (422, "empty_audience")
    assert post(audience={}) == (422, "empty_audience")
    assert post(body="很长" * 300) == (422, "text_too_long")
    assert post(send_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()) == (422, "send_at_in_past")
    assert post(category="nope") == (422, "unknown_category")
    assert post(urgency="very") == (422, "validation_error")
    assert post(extra_field=1) == (422, "validation_error")
    assert post(channels=["wecom"]) == (422, "empty_audience")
    assert post(audience={"csv": "name\n张三\n"}) == (422, "csv_invalid")
    agency.daily_limit = 1
    session.add(agency)
    session.commit()
    assert post() == (429, "daily_limit_exceeded")
    # Site/TV/Weibo-only notices need no audience.
    r = app_client.post(
        "/api/v1/notices", json=notice_body(channels=["site", "tv"], body="公告", audience={}), headers=auth
    )
    assert r.status_code == 202, r.text


def test_scoping_and_scopes(app_client: TestClient, session: Session, auth: dict[str, str]) -> None:
    seed_people(session)
    notice_id = app_client.post("/api/v1/notices", json=notice_body(), headers=auth).json()["id"]
    other = make_agency(session, code="qz-rsj", name="衢州市人社局")
    other_key = make_key(session, other, ["notices:send", "notices:read"]).key
    oh = {"Authorization": f"Bearer {other_key}"}
    assert app_client.get(f"/api/v1/notices/{notice_id}", headers=oh).status_code == 404
    assert app_client.post(f"/api/v1/notices/{notice_id}/cancel", headers=oh).status_code == 404
    assert app_client.get(f"/api/v1/notices/{notice_id}/deliveries", headers=oh).status_code == 404
    assert app_client.get("/api/v1/notices", headers=oh).json()["total"] == 0
    read_only = make_key(session, other, ["notices:read"]).key
    r = app_client.post("/api/v1/notices", json=notice_body(), headers={"Authorization": f"Bearer {read_only}"})
    assert r.status_code == 403
    assert app_client.get("/api/v1/notices").status_code == 401


def test_list_deliveries_masked_and_csv(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    seed_people(session)
    notice_id = app_client.post("/api/v1/notices", json=notice_body(channels=["sms"]), headers=auth).json()["id"]
    wait_for(
        lambda: (
            app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["progress"].get("sms", {}).get("sent")
            == 2
        )
    )
    page = app_client.get(f"/api/v1/notices/{notice_id}/deliveries?limit=1", headers=auth).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert page["items"][0]["recipient"].startswith("138****")
    reveal = make_key(session, agency, ["notices:read", "subscribers:read"]).key
    full = app_client.get(
        f"/api/v1/notices/{notice_id}/deliveries", headers={"Authorization": f"Bearer {reveal}"}
    ).json()
    assert {i["recipient"] for i in full["items"]} == {"13800000001", "13800000002"}
    assert app_client.get(f"/api/v1/notices/{notice_id}/deliveries?status=failed", headers=auth).json()["total"] == 0
    assert app_client.get(f"/api/v1/notices/{notice_id}/deliveries?status=bogus", headers=auth).status_code == 422
    csv_text = app_client.get(f"/api/v1/notices/{notice_id}/deliveries?format=csv", headers=auth).text
    lines = csv_text.lstrip("\ufeff").strip().splitlines()
    assert lines[0].startswith("id,channel") and len(lines) == 3 and "13800000001" not in csv_text
    listing = app_client.get("/api/v1/notices?urgency=urgent&limit=10", headers=auth).json()
    assert [n["id"] for n in listing["items"]] == [notice_id]
    assert app_client.get("/api/v1/notices?urgency=normal", headers=auth).json()["total"] == 0
    # The channel filter is part of the query, so the total counts only matching notices.
    assert app_client.get("/api/v1/notices?channel=sms", headers=auth).json()["total"] == 1
    assert app_client.get("/api/v1/notices?channel=wechat", headers=auth).json()["total"] == 0
    assert app_client.get("/api/v1/notices?channel=fax", headers=auth).status_code == 422
    # The export reads in keyset pages; one row per page still gives every row once, in order.
    exported = list(service.iter_deliveries(app_client.app.state.engine, notice_id, None, None, batch=1))  # type: ignore[attr-defined]
    assert [r.id for r in exported] == sorted(i["id"] for i in full["items"])


def test_sent_delivery_drops_the_error_of_an_earlier_attempt(
    app_client: TestClient, session: Session, auth: dict[str, str], fake_providers: dict[str, ScriptedChannel]
) -> None:
    """A retry that succeeds is `sent` with no error code, in the JSON page and in the CSV export."""
    from channels.base import SendResult

    make_subscriber(session, "13800000001", None, regions=["江山市"], channels=["sms"])
    fake_providers["aliyun_sms"].script = lambda m, attempt: (
        SendResult.retryable(m.reference, "isv.BUSINESS_LIMIT_CONTROL", "flow control", retry_after=0.01)
        if attempt == 1
        else SendResult.accepted(m.reference, f"p-{m.reference}")
    )
    notice_id = app_client.post("/api/v1/notices", json=notice_body(channels=["sms"]), headers=auth).json()["id"]
    url = f"/api/v1/notices/{notice_id}/deliveries"
    wait_for(lambda: [i["status"] for i in app_client.get(url, headers=auth).json()["items"]] == ["sent"])
    [item] = app_client.get(url, headers=auth).json()["items"]
    assert (item["attempts"], item["error_code"]) == (2, None)
    rows = app_client.get(f"{url}?format=csv", headers=auth).text.lstrip("\ufeff").strip().splitlines()
    header, line = rows[0].split(","), rows[1].split(",")
    assert line[header.index("status")] == "sent" and line[header.index("error_code")] == ""
    session.expire_all()
    stored = session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).one()
    assert (stored.error_code, stored.error_reason) == (None, None)


def test_work_held_by_quiet_hours_says_until_when(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    """Normal SMS at 23:30 Beijing time: the API, the staff progress page and /metrics say `held until 07:00`."""
    from govconnect.agencies.service import create_staff
    from govconnect.clock import CHINA_TZ, utcnow
    from tests.govconnect.publishing.test_staff_directory import sign_in

    night = utcnow().astimezone(CHINA_TZ).replace(hour=23, minute=30)
    morning = (night + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    app_client.app.state.queue.ctx["clock"] = lambda: night.astimezone(UTC)  # type: ignore[attr-defined]
    seed_people(session)
    body = notice_body(urgency="normal", channels=["sms", "wechat"])
    notice_id = app_client.post("/api/v1/notices", json=body, headers=auth).json()["id"]

    def progress() -> dict[str, dict[str, object]]:
        return app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()["progress"]  # type: ignore[no-any-return]

    wait_for(lambda: progress().get("sms", {}).get("held") and progress().get("wechat", {}).get("sent") == 1)
    sms, wechat = progress()["sms"], progress()["wechat"]
    assert sms["queued"] == 2 and wechat["held"] == []
    assert sms["held"] == [{"reason": "quiet_hours", "count": 2, "until": morning.isoformat()}]
    assert morning.isoformat().endswith("T07:00:00+08:00")

    metrics = app_client.get("/metrics", headers=METRICS_AUTH).text
    assert 'govconnect_held_deliveries{reason="quiet_hours"} 2.0' in metrics
    # The send job waits for 07:00 on a timer of the embedded queue: the queue is not empty.
    depth = next(line for line in metrics.splitlines() if line.startswith("govconnect_queue_depth "))
    assert float(depth.split()[1]) >= 1
    admin = {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}
    assert app_client.get("/status?format=json", headers=admin).json()["queue_jobs"] >= 1

    create_staff(session, "wangfang", agency, "operator", "correct-horse-1", "王芳")
    session.commit()
    sign_in(app_client, "wangfang")
    page = app_client.get(f"/m/staff/notices/{notice_id}")
    assert page.status_code == 200 and "夜间免打扰：2 条暂缓，07:00 起发送" in page.text
    assert "held until 07:00" in page.text


def test_scheduled_notice_can_be_cancelled(app_client: TestClient, session: Session, auth: dict[str, str]) -> None:
    seed_people(session)
    send_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = app_client.post("/api/v1/notices", json=notice_body(send_at=send_at), headers=auth)
    assert r.json()["status"] == "scheduled"
    notice_id = r.json()["id"]
    c = app_client.post(f"/api/v1/notices/{notice_id}/cancel", headers=auth)
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    again = app_client.post(f"/api/v1/notices/{notice_id}/cancel", headers=auth)
    assert again.status_code == 409


def test_csv_audience_personalised(
    app_client: TestClient, session: Session, auth: dict[str, str], fake_providers: dict[str, ScriptedChannel]
) -> None:
    csv_text = "phone,name,room\n13900000001,王五,301\n13900000001,王五,301\n+8613900000002,赵六,402\nbad,x,y\n"
    body = notice_body(channels=["sms"], body="((name))：请于明早到((room))室开会", audience={"csv": csv_text})
    r = app_client.post("/api/v1/notices", json=body, headers=auth)
    assert r.status_code == 202, r.text
    wait_for(lambda: len(fake_providers["aliyun_sms"].sent) == 2)
    assert sorted(m.text for m in fake_providers["aliyun_sms"].sent) == [
        "王五：请于明早到301室开会",
        "赵六：请于明早到402室开会",
    ]
