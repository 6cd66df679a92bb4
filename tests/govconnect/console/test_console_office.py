"""Console audit log, reports and agency settings: admin-only where they should be, one agency's data only."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select

from govconnect.agencies.models import Agency, StaffUser
from govconnect.audit.models import AuditEntry
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from govconnect.governance.models import AgencyPolicy
from govconnect.message_templates.senders import sender_of
from govconnect.notices.pipeline_models import AgencyCallback
from govconnect.reports.models import ReportFailure, ReportRollup
from govconnect.reports.rollup import beijing_day
from tests.govconnect.console.conftest import console_csrf, console_sign_in, make_team, team_password_hash


def _admin(session: Session, agency: Agency, username: str = "admin-qz-yjj") -> str:
    session.add(
        StaffUser(
            username=username,
            agency_id=agency.id or 0,
            role="admin",
            password_hash=team_password_hash(),
            display_name="管理员",
        )
    )
    session.commit()
    return username


def test_audit_log_filters_pages_and_exports_only_the_agencys_entries(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    for n in range(55):
        record_audit(session, Actor.cli(agency.id), "template_change", "template", n, {"n": n}, agency.id)
    record_audit(session, Actor.cli(agency.id), "key_revoke", "api_key", "7", {"why": "=cmd()"}, agency.id)
    record_audit(session, Actor.cli(other.id), "key_revoke", "api_key", "9", {"secret": "水利局的"}, other.id)
    session.commit()
    console_sign_in(client, "wangli-qz-yjj")
    assert client.get("/console/audit").status_code == 403  # operators do not read the audit log
    assert client.get("/console/audit.csv").status_code == 403
    console_sign_in(client, _admin(session, agency))
    page = client.get("/console/audit")
    assert page.status_code == 200 and "审计日志" in page.text and "水利局的" not in page.text
    # 55 + 1 + two sign-ins (operator, admin) = 58 entries: 50 a page.
    assert "共 58 条" in page.text and "第 1 / 2 页" in page.text
    second = client.get("/console/audit", params={"page": 2})
    assert len(re.findall(r"<tr><td>", second.text)) == 8
    revoked = client.get("/console/audit", params={"action": "key_revoke"})
    assert "共 1 条" in revoked.text and "吊销密钥" in revoked.text and "api_key:7" in revoked.text
    assert 'href="/console/audit.csv?action=key_revoke"' in revoked.text
    exported = client.get("/console/audit.csv", params={"action": "key_revoke"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert len(rows) == 2 and rows[1][6] == "7" and rows[1][7] == '{"why": "=cmd()"}'
    everything = list(csv.reader(io.StringIO(client.get("/console/audit.csv").text.lstrip("\ufeff"))))
    assert len(everything) == 59 and "水利局的" not in str(everything)
    today = beijing_day(utcnow())
    assert "共 0 条" in client.get("/console/audit", params={"until": str(today.replace(year=today.year - 1))}).text
    assert client.get("/console/audit", params={"since": "not-a-day"}).status_code == 422
    assert client.get("/console/audit", params={"action": "nonsense"}).status_code == 200  # unknown action: no filter


def _rollups(session: Session, agency: Agency, other: Agency) -> None:
    day = beijing_day(utcnow())
    session.add(ReportRollup(agency_id=agency.id or 0, day=day, channel="", provider="", notices=2))
    session.add(
        ReportRollup(
            agency_id=agency.id or 0, day=day, channel="sms", provider="aliyun_sms", deliveries=10, sent=9,
            delivered=7, failed=2, sms_parts=18, ttd_b0=5, ttd_b3=2,
        )
    )  # fmt: skip
    session.add(
        ReportFailure(
            agency_id=agency.id or 0, day=day, channel="sms", provider="aliyun_sms", reason="isv.BLACK", count=2
        )
    )
    session.add(ReportRollup(agency_id=other.id or 0, day=day, channel="wechat", provider="wechat_mp", deliveries=333))
    session.commit()


def test_reports_show_exports_and_chart_the_agencys_own_figures(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    _rollups(session, agency, other)
    console_sign_in(client, "wangli-qz-yjj")  # operators read the reports
    page = client.get("/console/reports")
    assert page.status_code == 200 and 'id="report-table"' in page.text
    assert "isv.BLACK × 2" in page.text and "333" not in page.text and "送达率 <strong>77.8%</strong>" in page.text
    assert '<img class="chart" id="scorecard-chart" src="/console/reports/scorecard.svg?month=' in page.text
    day = beijing_day(utcnow()).isoformat()
    exported = client.get("/console/reports/export.csv", params={"from": day, "to": day})
    assert exported.status_code == 200 and "qz-yjj" in exported.text and "qz-sw" not in exported.text
    xlsx = client.get("/console/reports/export.xlsx", params={"from": day, "to": day})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)} == {"qz-yjj"}
    svg = client.get("/console/reports/scorecard.svg", params={"month": day[:7]})
    assert svg.headers["content-type"].startswith("image/svg+xml") and "衢州市应急管理局" in svg.text
    assert "衢州市水利局" not in svg.text
    backwards = client.get("/console/reports", params={"from": day, "to": "2020-01-01"})
    assert backwards.status_code == 422 and "开始日期晚于结束日期" in backwards.text
    assert client.get("/console/reports/export.csv", params={"from": day, "to": "2020-01-01"}).status_code == 422
    assert client.get("/console/reports/export.pdf").status_code == 404
    console_sign_in(client, "liuyang-qz-yjj")
    assert client.get("/console/reports").status_code == 403


def test_settings_change_sender_policy_and_callback_audited(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    other = make_team(session, "qz-sw", "衢州市水利局")
    session.add(
        AgencyCallback(agency_id=agency.id or 0, status="failed", attempts=9, last_result="http 500", events=[{}, {}])
    )
    session.add(AgencyCallback(agency_id=other.id or 0, status="failed", attempts=3, last_result="水利回调", events=[]))
    session.commit()
    console_sign_in(client, "zhaomin-qz-yjj")
    token = console_csrf(client)
    assert client.get("/console/settings").status_code == 403
    assert client.post("/console/settings/policy", data={"csrf": token, "require_approval": "none"}).status_code == 403
    console_sign_in(client, _admin(session, agency))
    page = client.get("/console/settings")
    assert page.status_code == 200 and "http 500" in page.text and "水利回调" not in page.text
    assert "1,000,000" in page.text and "22:00–07:00" in page.text
    assert "共 0 批" in client.get("/console/settings", params={"callback_status": "delivered"}).text
    token = console_csrf(client, "/console/settings")
    saved = client.post(
        "/console/settings/sender",
        data={
            "csrf": token,
            "sms_sign_name": "衢州应急",
            "sms_template_code": "SMS_1234",
            "urgent_ignores_suppression": "1",
        },
    )
    assert saved.status_code == 200 and "短信签名与模板代码已保存" in saved.text and 'value="衢州应急"' in saved.text
    session.expire_all()
    sender = sender_of(session, agency.id or 0)
    assert (sender.sms_sign_name, sender.urgent_ignores_suppression) == ("衢州应急", True)
    bad_sign = client.post("/console/settings/sender", data={"csrf": token, "sms_sign_name": "【x】"})
    assert bad_sign.status_code == 422 and "输入有误" in bad_sign.text
    policy = client.post(
        "/console/settings/policy",
        data={
            "csrf": token,
            "require_approval": "large",
            "large_audience": "500",
            "approvers": "2",
            "review_hours": "12",
        },
    )
    assert policy.status_code == 200 and "审核策略已保存" in policy.text
    stored = session.get(AgencyPolicy, agency.id)
    assert stored is not None and (stored.require_approval, stored.large_audience, stored.approvers) == (
        "large",
        500,
        2,
    )
    assert client.post("/console/settings/policy", data={"csrf": token, "approvers": "9"}).status_code == 422
    assert client.post("/console/settings/policy", data={"csrf": token, "require_approval": "x"}).status_code == 422
    refused = client.post("/console/settings/callback", data={"csrf": token, "callback_url": "ftp://example.org/x"})
    assert refused.status_code == 422 and "HTTPS" in refused.text
    registered = client.post("/console/settings/callback", data={"csrf": token, "callback_url": "https://127.0.0.1/cb"})
    assert registered.status_code == 200 and "回调地址已保存" in registered.text
    session.expire_all()
    assert session.get(Agency, agency.id).callback_url == "https://127.0.0.1/cb"  # type: ignore[union-attr]
    assert session.get(Agency, other.id).callback_url is None  # type: ignore[union-attr]
    actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.agency_id == agency.id)).all()]
    assert actions.count("settings_change") == 2 and actions.count("policy_change") == 1
    assert client.post("/console/settings/sender", data={"sms_sign_name": "x"}).status_code == 400  # no CSRF


def test_audit_log_escapes_what_people_typed(client: TestClient, session: Session) -> None:
    agency = make_team(session)
    record_audit(session, Actor.cli(agency.id), "reject", "notice", "n1", {"reason": "<script>x</script>"}, agency.id)
    session.commit()
    console_sign_in(client, _admin(session, agency))
    page = client.get("/console/audit", params={"action": "reject"}).text
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
