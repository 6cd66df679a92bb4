"""Sign-off on both databases: policy, pending notices go nowhere, N approvers, never the drafter, reject, edit."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_staff
from govconnect.audit.models import AuditEntry
from govconnect.clock import utcnow
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import Delivery, NoticeOutbox
from govconnect.reports.models import ReportRollup
from tests.factories import make_agency, make_key, make_subscriber
from tests.govconnect.notices.conftest import wait_for

DRAFTER = ["notices:send", "notices:read"]
APPROVER = ["notices:approve", "notices:read"]


def _key(session: Session, agency: Agency, scopes: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(session, agency, scopes).key}"}


def _policy(client: TestClient, session: Session, agency: Agency, **values: object) -> dict[str, str]:
    admin = _key(session, agency, ["admin"])
    r = client.put("/api/v1/agencies/me/policy", json=values, headers=admin)
    assert r.status_code == 200, r.text
    return admin


def _notice(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": "停水通知",
        "body": "明日 9:00 起柯城区部分路段停水。",
        "category": "yjyj",
        "channels": ["sms", "site"],
        "urgency": "urgent",
        "audience": {"subscribers": {}},
    }
    body.update(over)
    return body


def _deliveries(session: Session, notice_id: str) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.notice_id == notice_id)).all())


def test_policy_api_is_admin_only_checked_and_audited(app_client: TestClient, session: Session, agency: Agency) -> None:
    admin = _key(session, agency, ["admin"])
    assert app_client.get("/api/v1/agencies/me/policy", headers=admin).json()["require_approval"] == "none"
    r = app_client.put(
        "/api/v1/agencies/me/policy", json={"require_approval": "large", "large_audience": 500}, headers=admin
    )
    assert r.status_code == 200 and r.json()["large_audience"] == 500 and r.json()["approvers"] == 1
    bad = app_client.put("/api/v1/agencies/me/policy", json={"approvers": 0}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    unknown = app_client.put("/api/v1/agencies/me/policy", json={"mode": "all"}, headers=admin)
    assert unknown.status_code == 422
    sender = _key(session, agency, DRAFTER)
    assert app_client.get("/api/v1/agencies/me/policy", headers=sender).status_code == 403
    row = session.exec(select(AuditEntry).where(AuditEntry.action == "policy_change")).one()
    assert row.changes == {
        "require_approval": {"from": "none", "to": "large"},
        "large_audience": {"from": 10000, "to": 500},
    }


def test_pending_notice_goes_nowhere_until_approved_never_by_its_drafter(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    _policy(app_client, session, agency, require_approval="public")
    drafter = _key(session, agency, DRAFTER + ["notices:approve"])  # may approve, but not its own notice
    r = app_client.post("/api/v1/notices", json=_notice(), headers=drafter)
    assert r.status_code == 202 and r.json()["status"] == "pending_approval"
    notice_id = r.json()["id"]
    assert notice_id not in app_client.get("/m/").text
    assert app_client.get(f"/m/notices/{notice_id}").status_code == 404
    assert _deliveries(session, notice_id) == []
    assert session.exec(select(NoticeOutbox).where(NoticeOutbox.notice_id == notice_id)).first() is None

    own = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=drafter)
    assert own.status_code == 403 and own.json()["error"]["code"] == "self_approval"
    sender_only = _key(session, agency, DRAFTER)
    assert app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=sender_only).status_code == 403
    other = make_agency(session, code="qz-other")
    foreign = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=_key(session, other, APPROVER))
    assert foreign.status_code == 404

    approver = _key(session, agency, APPROVER)
    ok = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=approver)
    assert ok.status_code == 200 and ok.json()["status"] in ("approved", "sending")
    wait_for(lambda: [d.status for d in _deliveries(session, notice_id) if d.channel == "sms"] == ["sent"])
    assert "停水通知" in app_client.get(f"/m/notices/{notice_id}").text
    again = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=approver)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    actions = [a.action for a in session.exec(select(AuditEntry).where(AuditEntry.target_id == notice_id)).all()]
    assert actions[:2] == ["submit", "approve"]


def test_two_approvers_and_a_staff_drafter(app_client: TestClient, session: Session, agency: Agency) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    _policy(app_client, session, agency, require_approval="all", approvers=2)
    r = app_client.post("/api/v1/notices", json=_notice(channels=["sms"]), headers=_key(session, agency, DRAFTER))
    notice_id = r.json()["id"]
    first, second = _key(session, agency, APPROVER), _key(session, agency, APPROVER)
    one = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=first)
    assert one.status_code == 200 and one.json()["status"] == "pending_approval"
    assert one.headers["x-approvals-missing"] == "1"
    twice = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=first)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_approved"
    # The notice waited 90 minutes for its second sign-off: the agency's report counts one approval and its turnaround.
    session.execute(
        update(Notice).where(Notice.id == notice_id).values(status_changed_at=utcnow() - timedelta(minutes=90))
    )
    session.commit()
    two = app_client.post(f"/api/v1/notices/{notice_id}/approve", headers=second)
    assert two.status_code == 200 and two.headers["x-approvals-missing"] == "0"
    wait_for(lambda: len(_deliveries(session, notice_id)) == 1)
    session.expire_all()
    rows = session.exec(select(ReportRollup).where(ReportRollup.agency_id == agency.id)).all()
    assert sum(r.approvals for r in rows) == 1
    assert 5400 <= sum(r.approval_seconds for r in rows) < 5460


def test_reject_then_edit_back_to_draft_and_submit_again(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    _policy(app_client, session, agency, require_approval="all")
    drafter, approver = _key(session, agency, DRAFTER), _key(session, agency, APPROVER)
    notice_id = app_client.post("/api/v1/notices", json=_notice(), headers=drafter).json()["id"]

    no_reason = app_client.post(f"/api/v1/notices/{notice_id}/reject", json={}, headers=approver)
    assert no_reason.status_code == 422
    rejected = app_client.post(f"/api/v1/notices/{notice_id}/reject", json={"reason": "时间写错了"}, headers=approver)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["rejected_reason"] == "时间写错了"
    # A rejected notice cannot be approved, submitted or sent.
    for action in ("approve", "submit"):
        r = app_client.post(
            f"/api/v1/notices/{notice_id}/{action}", headers=approver if action == "approve" else drafter
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition", action
    assert _deliveries(session, notice_id) == []

    edited = app_client.patch(f"/api/v1/notices/{notice_id}", json={"body": "后天 9:00 起停水。"}, headers=drafter)
    assert (
        edited.status_code == 200
        and edited.json()["status"] == "draft"
        and edited.json()["body"] == "后天 9:00 起停水。"
    )
    submitted = app_client.post(f"/api/v1/notices/{notice_id}/submit", headers=drafter)
    assert submitted.status_code == 202 and submitted.json()["status"] == "pending_approval"
    # Editing a pending notice returns it to draft.
    back = app_client.patch(f"/api/v1/notices/{notice_id}", json={"title": "停水通知（更新）"}, headers=drafter)
    assert back.json()["status"] == "draft"
    bad = app_client.patch(f"/api/v1/notices/{notice_id}", json={"channels": ["fax"]}, headers=drafter)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_channel"
    unknown = app_client.patch(f"/api/v1/notices/{notice_id}", json={"status": "completed"}, headers=drafter)
    assert unknown.status_code == 422


def test_started_notices_cannot_be_edited_and_scheduled_ones_can(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    later = (utcnow() + timedelta(hours=3)).isoformat()
    scheduled = app_client.post("/api/v1/notices", json=_notice(send_at=later), headers=auth).json()
    assert scheduled["status"] == "scheduled"
    moved = (utcnow() + timedelta(hours=5)).isoformat()
    r = app_client.patch(f"/api/v1/notices/{scheduled['id']}", json={"send_at": moved, "title": "改期"}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "scheduled" and r.json()["title"] == "改期"
    now_notice = app_client.post("/api/v1/notices", json=_notice(), headers=auth).json()
    wait_for(lambda: app_client.get(f"/api/v1/notices/{now_notice['id']}", headers=auth).json()["status"] != "accepted")
    started = app_client.patch(f"/api/v1/notices/{now_notice['id']}", json={"title": "x"}, headers=auth)
    assert started.status_code == 409 and started.json()["error"]["code"] == "not_editable"
    other = make_agency(session, code="qz-other")
    foreign = app_client.patch(
        f"/api/v1/notices/{scheduled['id']}", json={"title": "x"}, headers=_key(session, other, DRAFTER)
    )
    assert foreign.status_code == 404


def test_urgent_notices_go_at_once_with_a_tracked_review(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    _policy(app_client, session, agency, require_approval="all", urgent_at_once=True, review_hours=2)
    drafter = _key(session, agency, DRAFTER + ["notices:approve"])
    reviewer = _key(session, agency, APPROVER)
    urgent = app_client.post("/api/v1/notices", json=_notice(), headers=drafter).json()
    normal = app_client.post("/api/v1/notices", json=_notice(urgency="normal", title="普通"), headers=drafter).json()
    assert urgent["status"] == "accepted" and urgent["review_due_at"] is not None
    assert normal["status"] == "pending_approval" and normal["review_due_at"] is None
    wait_for(lambda: len(_deliveries(session, urgent["id"])) == 1)
    listed = app_client.get("/api/v1/notices", params={"review": "pending"}, headers=reviewer).json()
    assert [n["id"] for n in listed["items"]] == [urgent["id"]]
    assert app_client.get("/api/v1/notices", params={"review": "overdue"}, headers=reviewer).json()["total"] == 0
    N = Notice.__table__  # type: ignore[attr-defined]
    # Two hours pass without a review.
    session.connection().execute(
        update(N).where(N.c.id == urgent["id"]).values(review_due_at=utcnow() - timedelta(minutes=1))
    )
    session.commit()
    overdue = app_client.get("/api/v1/notices", params={"review": "overdue"}, headers=reviewer).json()
    assert [n["id"] for n in overdue["items"]] == [urgent["id"]]
    own = app_client.post(f"/api/v1/notices/{urgent['id']}/review", headers=drafter)
    assert own.status_code == 403 and own.json()["error"]["code"] == "self_approval"
    done = app_client.post(f"/api/v1/notices/{urgent['id']}/review", headers=reviewer)
    assert done.status_code == 200 and done.json()["reviewed_at"] is not None
    assert app_client.get("/api/v1/notices", params={"review": "overdue"}, headers=reviewer).json()["total"] == 0
    assert app_client.post(f"/api/v1/notices/{urgent['id']}/review", headers=reviewer).status_code == 409
    bad = app_client.get("/api/v1/notices", params={"review": "someday"}, headers=reviewer)
    assert bad.status_code == 422


def test_approvers_are_told_with_a_sign_in_link(app_client: TestClient, session: Session, agency: Agency) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    approver = create_staff(session, "zhaoqiang", agency, "approver", "correct-horse-1", "赵强")
    approver.phone = "13900000009"
    session.add(approver)
    session.commit()
    _policy(app_client, session, agency, require_approval="all")
    notice_id = app_client.post("/api/v1/notices", json=_notice(), headers=_key(session, agency, DRAFTER)).json()["id"]
    session.expire_all()
    message = session.exec(select(Notice).where(Notice.title == "待审核通知")).one()
    assert message.audience["csv"] == "phone\n13900000009" and message.status in ("accepted", "sending")
    assert f"/m/staff/notices/{notice_id}" in message.body
    wait_for(lambda: [d.recipient for d in _deliveries(session, message.id)] == ["13900000009"])
    page = app_client.get(f"/m/staff/notices/{notice_id}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/m/login")


def test_a_scheduled_notice_not_approved_in_time_expires_and_its_drafter_is_told(
    app_client: TestClient, session: Session, agency: Agency
) -> None:
    from govconnect.governance.schedules import governance_tick

    make_subscriber(session, "13800000001", None, channels=["sms"])
    _policy(app_client, session, agency, require_approval="all")
    drafter = create_staff(session, "wangli", agency, "operator", "correct-horse-1", "王丽")
    drafter.phone = "13900000001"
    session.add(drafter)
    session.commit()
    notice = Notice(
        agency_id=agency.id or 0,
        title="周末停水",
        body="周末停水。",
        channels=["sms"],
        status="pending_approval",
        send_at=utcnow() - timedelta(seconds=5),
        created_by=f"staff:{drafter.id}",
        status_changed_by=f"staff:{drafter.id}",
    )
    session.add(notice)
    session.commit()
    settings = app_client.app.state.settings  # type: ignore[attr-defined]
    queued = governance_tick(session.get_bind(), settings, utcnow())  # type: ignore[arg-type]
    session.expire_all()
    assert session.get(Notice, notice.id).status == "expired"  # type: ignore[union-attr]
    [told] = queued
    assert told.audience["csv"] == "phone\n13900000001" and "周末停水" in told.body
    assert _deliveries(session, notice.id) == []
    expiry = session.exec(select(AuditEntry).where(AuditEntry.target_id == notice.id)).one()
    assert expiry.actor == "system:approvals" and expiry.changes["to"] == "expired"
    assert governance_tick(session.get_bind(), settings, utcnow()) == []  # type: ignore[arg-type]
    assert session.connection().execute(text("SELECT count(*) FROM notice WHERE status = 'expired'")).scalar() == 1
