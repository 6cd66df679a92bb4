"""Recurring notices: occurrence dates in Beijing time, one notice per occurrence, end date, stop."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import CHINA_TZ, utcnow
from govconnect.governance.schedules import governance_tick, occurrence
from govconnect.notices.models import Notice
from tests.factories import make_subscriber


def test_occurrences_keep_beijing_wall_time_and_clamp_month_ends() -> None:
    first = datetime(2027, 1, 31, 8, 30, tzinfo=CHINA_TZ).astimezone(UTC)
    assert occurrence(first, "daily", 1).astimezone(CHINA_TZ) == datetime(2027, 2, 1, 8, 30, tzinfo=CHINA_TZ)
    assert occurrence(first, "weekly", 2).astimezone(CHINA_TZ) == datetime(2027, 2, 14, 8, 30, tzinfo=CHINA_TZ)
    assert occurrence(first, "monthly", 1).astimezone(CHINA_TZ) == datetime(2027, 2, 28, 8, 30, tzinfo=CHINA_TZ)
    assert occurrence(first, "monthly", 2).astimezone(CHINA_TZ) == datetime(2027, 3, 31, 8, 30, tzinfo=CHINA_TZ)
    assert occurrence(first, "monthly", 12).astimezone(CHINA_TZ) == datetime(2028, 1, 31, 8, 30, tzinfo=CHINA_TZ)
    # 00:30 in Beijing is the previous day in UTC: the rule follows Beijing dates.
    late = datetime(2027, 3, 1, 0, 30, tzinfo=CHINA_TZ).astimezone(UTC)
    assert occurrence(late, "monthly", 1).astimezone(CHINA_TZ) == datetime(2027, 4, 1, 0, 30, tzinfo=CHINA_TZ)


def test_each_occurrence_is_its_own_notice_until_the_end_date(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    make_subscriber(session, "13800000001", None, channels=["sms"])
    first = utcnow() + timedelta(hours=2)
    ends_on = (first + timedelta(days=2)).astimezone(CHINA_TZ).date()
    body = {
        "notice": {
            "title": "每日水质公告",
            "body": "今日水质达标。",
            "category": "yjyj",
            "channels": ["sms"],
            "audience": {"subscribers": {}},
            "send_at": first.isoformat(),
        },
        "rule": "daily",
        "ends_on": ends_on.isoformat(),
    }
    r = app_client.post("/api/v1/schedules", json=body, headers=auth)
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert schedule["occurrences"] == 1 and len(schedule["notice_ids"]) == 1  # the first is due within a day
    first_notice = session.get(Notice, schedule["notice_ids"][0])
    assert (
        first_notice is not None and first_notice.status == "scheduled" and first_notice.schedule_id == schedule["id"]
    )
    assert abs((first_notice.send_at - first).total_seconds()) < 1  # type: ignore[operator]

    settings = app_client.app.state.settings  # type: ignore[attr-defined]
    engine = session.get_bind()
    assert governance_tick(engine, settings, utcnow()) == []  # nothing new is due yet  # type: ignore[arg-type]
    # The sweeper ticks all along; a day on, the day-two occurrence falls within the lead time, and so on.
    assert len(governance_tick(engine, settings, utcnow() + timedelta(days=1))) == 1  # type: ignore[arg-type]
    assert len(governance_tick(engine, settings, utcnow() + timedelta(days=2))) == 1  # type: ignore[arg-type]
    assert governance_tick(engine, settings, utcnow() + timedelta(days=3)) == []  # past the end date  # type: ignore[arg-type]
    detail = app_client.get(f"/api/v1/schedules/{schedule['id']}", headers=auth).json()
    assert detail["occurrences"] == 3 and detail["next_at"] is None and len(detail["notice_ids"]) == 3
    sends = sorted(session.get(Notice, i).send_at for i in detail["notice_ids"])  # type: ignore[union-attr]
    assert [(b - a) for a, b in zip(sends, sends[1:], strict=False)] == [timedelta(days=1)] * 2

    stopped = app_client.delete(f"/api/v1/schedules/{schedule['id']}", headers=auth)
    assert stopped.status_code == 200 and stopped.json()["cancelled_at"] is not None
    session.expire_all()
    assert {session.get(Notice, i).status for i in detail["notice_ids"]} == {"cancelled"}  # type: ignore[union-attr]
    listed = app_client.get("/api/v1/schedules", headers=auth).json()
    assert [s["id"] for s in listed] == [schedule["id"]]


def test_schedule_input_is_checked(app_client: TestClient, session: Session, auth: dict[str, str]) -> None:
    notice = {"title": "t", "body": "b", "channels": ["site"]}
    no_start = app_client.post(
        "/api/v1/schedules", json={"notice": notice, "rule": "daily", "ends_on": "2099-01-01"}, headers=auth
    )
    assert no_start.status_code == 422 and no_start.json()["error"]["code"] == "send_at_required"
    start = (utcnow() + timedelta(days=3)).isoformat()
    backwards = app_client.post(
        "/api/v1/schedules",
        json={"notice": {**notice, "send_at": start}, "rule": "weekly", "ends_on": date.today().isoformat()},
        headers=auth,
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "ends_before_start"
    rule = app_client.post(
        "/api/v1/schedules",
        json={"notice": {**notice, "send_at": start}, "rule": "hourly", "ends_on": "2099-01-01"},
        headers=auth,
    )
    assert rule.status_code == 422
    assert app_client.get("/api/v1/schedules/999", headers=auth).status_code == 404
