"""Reports API: scoping (admin all, others own), CSV/XLSX with formulas neutralised, scorecards, bad input."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import utcnow
from govconnect.reports.models import ReportFailure, ReportRollup
from govconnect.reports.rollup import beijing_day
from tests.factories import make_agency, make_key


def seed(session: Session, agency: Agency, other: Agency) -> str:
    day = beijing_day(utcnow())
    session.add(ReportRollup(agency_id=agency.id or 0, day=day, channel="", provider="", notices=2))
    session.add(
        ReportRollup(
            agency_id=agency.id or 0,
            day=day,
            channel="sms",
            provider="aliyun_sms",
            deliveries=10,
            sent=9,
            delivered=7,
            failed=2,
            sms_parts=18,
            optouts=1,
            ttd_b0=5,
            ttd_b3=2,
        )
    )
    session.add(
        ReportFailure(
            agency_id=agency.id or 0, day=day, channel="sms", provider="aliyun_sms", reason="=HYPERLINK(1)", count=2
        )
    )
    session.add(
        ReportRollup(
            agency_id=other.id or 0,
            day=day,
            channel="wechat",
            provider="wechat_mp",
            deliveries=3,
            delivered=3,
            ttd_b1=3,
        )
    )
    session.commit()
    return day.isoformat()


def test_reports_scope_export_and_scorecard(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    other = make_agency(session, code="qz-sjj", name="=cmd|' /C calc'!A0")
    day = seed(session, agency, other)
    admin = {"Authorization": f"Bearer {make_key(session, other, ['admin']).key}"}

    own = app_client.get(f"/api/v1/reports/agencies?from={day}&to={day}", headers=auth)
    assert own.status_code == 200
    (report,) = own.json()["agencies"]
    assert report["agency"]["code"] == "qz-yjj"
    totals = report["totals"]
    assert (totals["notices"], totals["deliveries"], totals["delivered"], totals["failed"]) == (2, 10, 7, 2)
    assert totals["failures_by_reason"] == {"=HYPERLINK(1)": 2}
    assert totals["time_to_deliver_p50_seconds"] == 3.5  # rank 3.5 of 7, inside the 0-5 s bucket

    everyone = app_client.get(f"/api/v1/reports/agencies?from={day}&to={day}", headers=admin).json()
    assert [r["agency"]["code"] for r in everyone["agencies"]] == ["qz-sjj", "qz-yjj"]

    exported = app_client.get(f"/api/v1/reports/agencies?from={day}&to={day}&format=csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "agency_code"
    names = {row[1] for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in names  # neutralised, never a formula
    assert any(row[-1] == "'=HYPERLINK(1)=2" for row in rows[1:])

    xlsx = app_client.get(f"/api/v1/reports/agencies?from={day}&to={day}&format=xlsx", headers=admin)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert "'=cmd|' /C calc'!A0" in values
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)

    card = app_client.get(f"/api/v1/reports/agencies/qz-yjj/scorecard?month={day[:7]}", headers=auth).json()
    assert card["delivery_rate"] == round(7 / 9, 4)
    assert card["timeliness"] == 1.0  # all 7 delivered within 5 minutes
    assert card["optout_rate"] == round(1 / 7, 4)
    assert card["failures_by_reason"] == {"=HYPERLINK(1)": 2}
    svg = app_client.get(f"/api/v1/reports/agencies/qz-sjj/scorecard.svg?month={day[:7]}", headers=admin)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<script" not in svg.text and "=cmd|&#39; /C calc&#39;!A0" in svg.text
    # Another agency's scorecard is not found for a non-admin key.
    assert app_client.get("/api/v1/reports/agencies/qz-sjj/scorecard", headers=auth).status_code == 404


def test_reports_bad_input_is_a_4xx_with_the_error_shape(
    app_client: TestClient, agency: Agency, auth: dict[str, str]
) -> None:
    today = beijing_day(utcnow())
    cases = [
        f"/api/v1/reports/agencies?from={today}&to={today - timedelta(days=1)}",
        f"/api/v1/reports/agencies?from={today - timedelta(days=400)}&to={today}",
        "/api/v1/reports/agencies?from=yesterday",
        "/api/v1/reports/agencies?format=pdf",
        "/api/v1/reports/agencies/qz-yjj/scorecard?month=2026-13",
    ]
    for url in cases:
        response = app_client.get(url, headers=auth)
        assert response.status_code == 422, url
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert app_client.get("/api/v1/reports/agencies").status_code == 401
