"""Console pages: sign-in, roles, agency scoping (404), dashboard, notice search, notice page, progress, CSV."""

from __future__ import annotations

import time
from datetime import UTC, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.clock import CHINA_TZ, utcnow
from govconnect.notices.pipeline_models import Delivery
from govconnect.operations.health import get_health
from tests.govconnect.console.conftest import console_csrf, console_sign_in, make_team
from tests.govconnect.publishing.helpers import make_notice

PAGES = ("/console/", "/console/notices", "/console/approvals", "/console/compose")


def test_console_sends_strangers_to_sign_in_and_back(client: TestClient, session: Session) -> None:
    make_team(session)
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/m/login?next=%2Fconsole"), path
    console_sign_in(client, "wangli-qz-yjj")  # the login form keeps next=/console/
    page = client.get("/console/")
    assert page.status_code == 200 and "工作台" in page.text and "王丽" in page.text
    assert 'nonce="' in page.text and "/console/static/console.js" in page.text
    assert client.get("/console/static/console.css").status_code == 200


def test_plain_staff_may_not_open_the_console(client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "liuyang-qz-yjj")
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "需要操作员权限" in response.text


def test_operator_may_not_approve(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    notice = make_notice(session, agency, status="pending_approval", created_by="staff:99")
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client)
    response = client.post(f"/console/notices/{notice.id}/approve", data={"csrf": token})
    assert response.status_code == 403
    session.refresh(notice)
    assert notice.status == "pending_approval"


def test_another_agencys_notice_is_not_found(client: TestClient, session: Session) -> None:
    make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    theirs = make_notice(session, other, title="水利局内部通知", status="pending_approval", created_by="staff:77")
    console_sign_in(client, "zhaomin-qz-yjj")
    token = console_csrf(client)
    for path in ("", "/progress.json", "/deliveries.csv"):
        assert client.get(f"/console/notices/{theirs.id}{path}").status_code == 404, path
    for action in ("approve", "reject", "cancel", "retract", "submit", "edit", "correct"):
        response = client.post(f"/console/notices/{theirs.id}/{action}", data={"csrf": token, "reason": "x"})
        assert response.status_code == 404, action
    assert "水利局内部通知" not in client.get("/console/notices").text
    assert "水利局内部通知" not in client.get("/console/").text
    assert "水利局内部通知" not in client.get("/console/approvals").text
    session.refresh(theirs)
    assert theirs.status == "pending_approval"
    assert client.get("/console/notices/" + "f" * 40).status_code == 404


def test_unsafe_requests_need_the_csrf_token(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    notice = make_notice(session, agency, status="accepted")
    console_sign_in(client, "wangli-qz-yjj")
    response = client.post(f"/console/notices/{notice.id}/cancel", data={})
    assert response.status_code == 400
    session.refresh(notice)
    assert notice.status == "accepted"


def test_dashboard_lists_today_scheduled_waiting_and_failures(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    moment = utcnow()
    make_notice(session, agency, title="今日停水通知", status="completed")
    make_notice(session, agency, title="明日演练通知", status="scheduled", send_at=moment + timedelta(days=1))
    waiting = make_notice(session, agency, title="待审防汛通知", status="pending_approval", created_by="staff:9999")
    failed = make_notice(session, agency, title="微博失败通知", status="completed")
    session.add(
        Delivery(
            notice_id=failed.id,
            channel="weibo",
            provider="weibo",
            recipient="public",
            status="failed",
            error_code="weibo_busy",
        )
    )
    session.commit()
    console_sign_in(client, "zhaomin-qz-yjj")
    page = client.get("/console/").text
    for text in ("今日停水通知", "明日演练通知", "待审防汛通知", "微博发布失败", "weibo_busy", "今日送达率"):
        assert text in page, text
    assert f"/console/notices/{waiting.id}" in page
    console_sign_in(client, "wangli-qz-yjj")  # an operator has no approval list
    assert "待我审核</h2>" not in client.get("/console/").text


def test_notice_search_filters_and_pages(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    for i in range(23):
        make_notice(session, agency, title=f"例行通知{i:02d}", channels=["site"], status="completed")
    make_notice(session, agency, title="防汛紧急预警", channels=["sms"], status="sending", created_by="staff:5")
    console_sign_in(client, "wangli-qz-yjj")
    first = client.get("/console/notices")
    assert "共 24 条" in first.text and "第 1 / 2 页" in first.text
    assert client.get("/console/notices", params={"page": 2}).text.count('href="/console/notices/') == 4
    found = client.get("/console/notices", params={"q": "防汛"}).text
    assert "防汛紧急预警" in found and "例行通知" not in found
    assert "共 1 条" in client.get("/console/notices", params={"channel": "sms"}).text
    assert "共 1 条" in client.get("/console/notices", params={"status": "sending"}).text
    assert "共 1 条" in client.get("/console/notices", params={"drafter": "staff:5"}).text
    today = utcnow().date()
    dated = client.get("/console/notices", params={"since": str(today - timedelta(days=1))})
    assert "共 24 条" in dated.text
    assert client.get("/console/notices", params={"since": "not-a-date"}).status_code == 422
    assert client.get("/console/notices", params={"q": "%"}).text.count("共 0 条") == 1  # LIKE is escaped


def test_notice_page_progress_json_and_masked_csv(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    notice = make_notice(session, agency, title="停电通知", channels=["sms", "site"], status="sending")
    rows = [
        Delivery(notice_id=notice.id, channel="sms", recipient="13800001111", status="delivered", parts=1),
        Delivery(notice_id=notice.id, channel="sms", recipient="13800002222", status="failed", error_code="bad"),
        Delivery(notice_id=notice.id, channel="sms", recipient="13905701234", status="queued", params={"_staff": True}),
    ]
    session.add_all(rows)
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    page = client.get(f"/console/notices/{notice.id}")
    assert page.status_code == 200 and "停电通知" in page.text
    assert 'data-live="yes"' in page.text and "138****1111" in page.text and "13800001111" not in page.text
    assert "13905701234" in page.text  # staff contacts are shown to staff, as in the directory
    data = client.get(f"/console/notices/{notice.id}/progress.json").json()
    assert data["channels"]["sms"]["total"] == 3 and data["channels"]["sms"]["done"] == 2
    assert data["percent"] == 66 and data["over"] is False and data["status_name"] == "发送中"
    failed_only = client.get(f"/console/notices/{notice.id}", params={"status": "failed"}).text
    assert "138****2222" in failed_only and "138****1111" not in failed_only
    csv = client.get(f"/console/notices/{notice.id}/deliveries.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "138****1111" in csv.text and "13800001111" not in csv.text and "13905701234" in csv.text
    only_failed = client.get(f"/console/notices/{notice.id}/deliveries.csv", params={"status": "failed"}).text
    assert only_failed.count("\n") == 2


def test_cancel_and_retract_from_the_notice_page(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    queued = make_notice(session, agency, status="accepted")
    public = make_notice(session, agency, title="已发布的通知", status="completed")
    console_sign_in(client, "wangli-qz-yjj")
    token = console_csrf(client)
    done = client.post(f"/console/notices/{queued.id}/cancel", data={"csrf": token})
    assert done.status_code == 200 and "已取消" in done.text
    again = client.post(f"/console/notices/{queued.id}/cancel", data={"csrf": token})
    assert again.status_code == 409  # said on the page, not a 500
    assert client.post(f"/console/notices/{public.id}/retract", data={"csrf": token}).status_code == 422
    retracted = client.post(f"/console/notices/{public.id}/retract", data={"csrf": token, "reason": "信息有误"})
    assert retracted.status_code == 200 and "已撤回" in retracted.text
    session.refresh(public)
    assert public.status == "retracted" and public.retracted_reason == "信息有误"
    assert "已发布的通知" not in client.get("/m/").text


def test_quiet_hours_and_caps_are_said_as_reasons(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    notice = make_notice(session, agency, title="夜间停水", channels=["sms"], status="sending")
    seven = (utcnow().astimezone(CHINA_TZ) + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    session.add_all(
        [
            Delivery(
                notice_id=notice.id,
                channel="sms",
                recipient="13800001111",
                status="queued",
                next_attempt_at=seven.astimezone(UTC),
            ),
            Delivery(notice_id=notice.id, channel="sms", recipient="13800002222", status="capped"),
        ]
    )
    pending = make_notice(session, agency, title="待审", status="pending_approval", created_by="staff:9")
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    assert "静默时段暂缓" in client.get("/console/").text
    held = client.get(f"/console/notices/{notice.id}/progress.json").json()["held"]
    assert any(r.startswith("静默时段：1 条短信将于 07:00 后发送") for r in held), held
    assert "每人每日上限：1 条短信未发送" in held
    waiting = client.get(f"/console/notices/{pending.id}/progress.json").json()
    assert (
        waiting["held"][0].startswith("等待审核")
        and waiting["live"] is True
        and waiting["actions"] == ["edit", "cancel"]
    )


def test_dashboard_names_a_provider_whose_circuit_is_open(app: Any, client: TestClient, session: Session) -> None:
    make_team(session)
    console_sign_in(client, "wangli-qz-yjj")
    assert "熔断" not in client.get("/console/").text
    health = get_health(app.state.queue.ctx)  # the in-process worker's provider health, as /status reads it
    assert client.portal is not None
    client.portal.call(
        health.store.hset, "circuit:aliyun_sms", {"state": "open", "opened_until": str(time.time() + 60)}
    )
    page = client.get("/console/").text
    assert "服务商 aliyun_sms 暂时不可用（熔断中）" in page
