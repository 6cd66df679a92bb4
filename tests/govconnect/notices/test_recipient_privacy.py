"""Who sees a delivery's recipient, who may address staff by id, and the quota a cancelled notice keeps."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from contacts.models import Contact, Department
from govconnect.agencies.models import Agency
from govconnect.notices.pipeline_models import Delivery
from tests.factories import make_key, make_subscriber
from tests.govconnect.notices.conftest import wait_for

QUIET_NIGHT = datetime(2026, 6, 1, 15, 30, tzinfo=UTC)  # 23:30 in Beijing: normal SMS waits for 07:00
STAFF_MOBILES = [f"1390000{n:04d}" for n in range(1, 21)]


def seed_staff(session: Session) -> tuple[int, list[int], int]:
    """20 staff-only contacts with mobiles in one department, and one public contact elsewhere."""
    inner = Department(name="值班室", path="应急局/值班室")
    public_dept = Department(name="办公室", path="应急局/办公室")
    session.add_all([inner, public_dept])
    session.flush()
    hidden = [
        Contact(name=f"值班员{n}", department_id=inner.id or 0, mobile=mobile, visibility="staff")
        for n, mobile in enumerate(STAFF_MOBILES)
    ]
    public = Contact(name="办公室主任", department_id=public_dept.id or 0, mobile="13700000001", visibility="public")
    session.add_all([*hidden, public])
    session.commit()
    return inner.id or 0, [c.id or 0 for c in hidden], public.id or 0


def body(audience: dict[str, object], **over: object) -> dict[str, object]:
    notice: dict[str, object] = {
        "title": "值班通知",
        "body": "((name))：今晚请到岗。",
        "category": "yjyj",
        "urgency": "normal",
        "channels": ["sms"],
        "audience": audience,
    }
    notice.update(over)
    return notice


def unmasked(text: str, numbers: list[str]) -> int:
    return sum(text.count(number) for number in numbers)


def test_the_reported_scenario_shows_no_staff_mobile(app_client: TestClient, session: Session, agency: Agency) -> None:
    app_client.app.state.queue.ctx["clock"] = lambda: QUIET_NIGHT  # type: ignore[attr-defined]
    department, hidden_ids, public_id = seed_staff(session)
    key = make_key(session, agency, ["notices:send", "notices:read", "subscribers:read"]).key
    auth = {"Authorization": f"Bearer {key}"}

    # Naming staff-only contacts by id is refused, the same way as ids that do not exist.
    refused = app_client.post("/api/v1/notices", json=body({"staff": {"ids": hidden_ids}}), headers=auth)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_contact"
    assert sorted(refused.json()["error"]["details"]["ids"]) == sorted(hidden_ids)
    missing = app_client.post("/api/v1/notices", json=body({"staff": {"ids": [999_999]}}), headers=auth)
    assert missing.json()["error"]["code"] == "unknown_contact"
    assert (
        app_client.post("/api/v1/notices", json=body({"staff": {"ids": [public_id]}}), headers=auth).status_code == 202
    )

    # A department is open to every sender; its staff-only members stay masked.
    accepted = app_client.post("/api/v1/notices", json=body({"staff": {"departments": [department]}}), headers=auth)
    assert accepted.status_code == 202, accepted.text
    notice_id = accepted.json()["id"]
    assert accepted.json()["recipient_count"] == 20
    wait_for(lambda: len(session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()) == 20)
    assert app_client.post(f"/api/v1/notices/{notice_id}/cancel", headers=auth).status_code == 200
    page = app_client.get(f"/api/v1/notices/{notice_id}/deliveries?limit=100", headers=auth)
    assert page.status_code == 200 and page.json()["total"] == 20
    assert {d["status"] for d in page.json()["items"]} == {"cancelled"}
    assert unmasked(page.text, STAFF_MOBILES) == 0
    assert {d["recipient"] for d in page.json()["items"]} == {f"139****{m[-4:]}" for m in STAFF_MOBILES}
    exported = app_client.get(f"/api/v1/notices/{notice_id}/deliveries?format=csv", headers=auth)
    assert exported.status_code == 200 and len(list(csv.reader(io.StringIO(exported.text)))) == 21
    assert unmasked(exported.text, STAFF_MOBILES) == 0

    # A key that may see the directory's staff sees them; it may not see subscribers.
    writer = make_key(session, agency, ["notices:read", "contacts:write"]).key
    shown = app_client.get(
        f"/api/v1/notices/{notice_id}/deliveries?format=csv", headers={"Authorization": f"Bearer {writer}"}
    )
    assert unmasked(shown.text, STAFF_MOBILES) == 20


def test_subscriber_and_staff_recipients_each_follow_their_own_scope(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    app_client.app.state.queue.ctx["clock"] = lambda: QUIET_NIGHT  # type: ignore[attr-defined]
    department, _hidden, _public = seed_staff(session)
    make_subscriber(session, "13800000001", None, channels=["sms"])
    sender = make_key(session, agency, ["notices:send", "notices:read", "contacts:write"]).key
    audience = {"staff": {"departments": [department]}, "subscribers": {"categories": ["yjyj"]}}
    accepted = app_client.post(
        "/api/v1/notices", json=body(audience, body="今晚有雨。"), headers={"Authorization": f"Bearer {sender}"}
    )
    assert accepted.status_code == 202, accepted.text
    notice_id = accepted.json()["id"]
    assert accepted.json()["recipient_count"] == 21
    wait_for(lambda: len(session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()) == 21)
    expectations = {
        ("notices:read",): (0, 0),
        ("notices:read", "subscribers:read"): (0, 1),
        ("notices:read", "contacts:write"): (20, 0),
        ("admin",): (20, 1),
    }
    for scopes, (staff_seen, subscribers_seen) in expectations.items():
        key = make_key(session, agency, scopes).key
        for fmt in ("json", "csv"):
            text = app_client.get(
                f"/api/v1/notices/{notice_id}/deliveries?format={fmt}&limit=100",
                headers={"Authorization": f"Bearer {key}"},
            ).text
            assert unmasked(text, STAFF_MOBILES) == staff_seen, (scopes, fmt)
            assert unmasked(text, ["13800000001"]) == subscribers_seen, (scopes, fmt)


def test_a_cancelled_notice_keeps_the_quota_of_what_was_handed_to_a_provider(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    app_client.app.state.queue.ctx["clock"] = lambda: QUIET_NIGHT  # type: ignore[attr-defined]
    agency.daily_limit = 30
    session.add(agency)
    session.commit()
    department, _hidden, _public = seed_staff(session)
    key = make_key(session, agency, ["notices:send", "notices:read"]).key
    auth = {"Authorization": f"Bearer {key}"}

    def send_and_cancel(handed: int) -> str:
        accepted = app_client.post("/api/v1/notices", json=body({"staff": {"departments": [department]}}), headers=auth)
        assert accepted.status_code == 202, accepted.text
        notice_id = accepted.json()["id"]
        wait_for(lambda: len(session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()) == 20)
        if handed:  # as if these had gone to the provider before the cancel
            ids = [d.id for d in session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all()][:handed]
            session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status="sent", next_attempt_at=None))  # type: ignore[attr-defined]
            session.commit()
        assert app_client.post(f"/api/v1/notices/{notice_id}/cancel", headers=auth).status_code == 200
        return notice_id

    send_and_cancel(handed=0)  # nothing was handed over: all 20 come back
    send_and_cancel(handed=15)  # 15 sent: they stay used
    over = app_client.post("/api/v1/notices", json=body({"staff": {"departments": [department]}}), headers=auth)
    assert over.status_code == 429, over.text
    assert over.json()["error"]["details"] == {"limit": 30, "used": 15, "requested": 20}
