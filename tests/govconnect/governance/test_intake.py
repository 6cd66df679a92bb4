"""Accept-then-enqueue in one place: with the queue down after commit, API and staff compose both accept."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.agencies.service import create_staff
from govconnect.audit.models import AuditEntry
from govconnect.clock import utcnow
from govconnect.notices.models import Notice
from govconnect.notices.pipeline_models import NoticeOutbox
from govconnect.notices.sweeper import sweep
from tests.factories import make_subscriber
from tests.govconnect.notices.conftest import wait_for
from tests.govconnect.publishing.helpers import csrf_from


def _break_queue(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(client.app.state.queue, "enqueue", refuse)  # type: ignore[attr-defined]


def _outbox_open(session: Session, notice_id: str) -> bool:
    session.expire_all()
    row = session.exec(select(NoticeOutbox).where(NoticeOutbox.notice_id == notice_id)).first()
    return row is not None and row.done_at is None


def test_api_accepts_when_the_queue_fails_and_the_sweeper_sends_later(
    app_client: TestClient, session: Session, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    _break_queue(app_client, monkeypatch)
    body = {
        "title": "停水",
        "body": "明日停水。",
        "category": "yjyj",
        "channels": ["sms"],
        "urgency": "urgent",
        "audience": {"subscribers": {}},
    }
    r = app_client.post("/api/v1/notices", json=body, headers=auth)
    assert r.status_code == 202, r.text
    notice_id = r.json()["id"]
    assert _outbox_open(session, notice_id)
    audit = session.exec(select(AuditEntry).where(AuditEntry.target_id == notice_id)).one()
    assert audit.action == "send" and audit.actor.startswith("key:")
    monkeypatch.undo()
    # A sweep past the claim timeout finds the committed outbox entry and queues the fan-out.
    ctx = app_client.app.state.queue.ctx  # type: ignore[attr-defined]
    later = utcnow() + timedelta(seconds=ctx["settings"].notices.claim_timeout_seconds + 1)
    report = app_client.portal.call(sweep, dict(ctx, clock=lambda: later))  # type: ignore[union-attr]
    assert report["fanouts"] == 1

    def sent() -> bool:
        detail = app_client.get(f"/api/v1/notices/{notice_id}", headers=auth).json()
        return detail["status"] == "sending" and detail["progress"].get("sms", {}).get("sent") == 1

    wait_for(sent)


def test_staff_compose_does_not_500_when_the_queue_fails(
    app_client: TestClient, session: Session, agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    create_staff(session, "wangli", agency, "operator", "correct-horse-1", "王丽")
    session.commit()
    token = csrf_from(app_client.get("/m/login").text)
    app_client.post("/m/login", data={"username": "wangli", "password": "correct-horse-1", "csrf": token})
    form = app_client.get("/m/staff/compose").text
    _break_queue(app_client, monkeypatch)
    data = {
        "csrf": csrf_from(form),
        "nonce": re.search(r'name="nonce" value="([^"]+)"', form).group(1),  # type: ignore[union-attr]
        "title": "停水通知",
        "body": "明日停水。",
        "category": "yjyj",
        "channel": ["sms"],
    }
    r = app_client.post("/m/staff/compose", data=data)
    assert r.status_code == 200 and "/m/staff/notices/" in str(r.url), r.text[:300]
    notice_id = str(r.url).rsplit("/", 1)[1]
    notice = session.get(Notice, notice_id)
    assert notice is not None and notice.status == "accepted" and notice.created_by.startswith("staff:")
    assert _outbox_open(session, notice_id)
