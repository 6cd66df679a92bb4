"""Audience files: uploads streamed into saved lists with a row report, reuse by id, inline CSV reports."""

from __future__ import annotations

import io

import openpyxl
from fastapi.testclient import TestClient
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.clock import CHINA_TZ, utcnow
from tests.factories import make_agency, make_key
from tests.govconnect.notices.conftest import wait_for
from tests.govconnect.notices.fakes import ScriptedChannel
from tests.govconnect.notices.test_notices_api import notice_body


def daytime(client: TestClient) -> None:
    """Run the app's worker on a clock at 10:00 Beijing time, so normal SMS are outside quiet hours."""
    now = utcnow()
    offset = now.astimezone(CHINA_TZ).replace(hour=10) - now
    client.app.state.queue.ctx["clock"] = lambda: utcnow() + offset  # type: ignore[attr-defined]


def upload(
    client: TestClient, auth: dict[str, str], content: bytes, filename: str = "名单.csv", name: str = ""
) -> dict:  # type: ignore[type-arg]
    r = client.post(
        "/api/v1/audiences", headers=auth, files={"file": (filename, content, "text/csv")}, data={"name": name}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_inline_csv_reports_refused_rows(app_client: TestClient, agency: Agency, auth: dict[str, str]) -> None:
    only_bad = notice_body(channels=["sms"], body="通知", audience={"csv": "phone\n12345"})
    r = app_client.post("/api/v1/notices", json=only_bad, headers=auth)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "empty_audience"
    assert error["details"]["csv"]["refused_rows"] == [{"line": 2, "reason": "invalid_phone"}]
    assert error["details"]["csv"]["accepted"] == 0

    one_each = notice_body(channels=["sms"], body="通知", audience={"csv": "phone\n12345\n13800000001\n"})
    r = app_client.post("/api/v1/notices", json=one_each, headers=auth)
    assert r.status_code == 202, r.text
    report = r.json()["audience_report"]
    assert r.json()["recipient_count"] == 1
    assert report["accepted"] == 1 and report["refused"] == 1
    assert report["refused_rows"] == [{"line": 2, "reason": "invalid_phone"}]


def test_upload_csv_report_and_reuse(
    app_client: TestClient,
    session: Session,
    agency: Agency,
    auth: dict[str, str],
    fake_providers: dict[str, ScriptedChannel],
) -> None:
    content = (
        "手机号,姓名,地址\n"
        "13900000001,王五,柯城区一号\n"
        "139 0000 0002,赵六,衢江区二号\n"
        "12345,坏,x\n"
        "13900000001,重复,柯城区\n"
        ",无号,y\n"
        "\n"
        "+8613900000003,钱七,江山市三号\n"
    ).encode()
    body = upload(app_client, auth, content, name="柯城区名单")
    assert (body["rows_read"], body["accepted"], body["refused"], body["duplicates"]) == (7, 3, 3, 1)
    assert body["columns"] == ["name", "地址"]
    assert body["refused_rows"] == [
        {"line": 4, "reason": "invalid_phone"},
        {"line": 6, "reason": "missing_phone"},
        {"line": 7, "reason": "empty_row"},
    ]
    list_id = body["id"]
    daytime(app_client)
    assert app_client.get(f"/api/v1/audiences/{list_id}", headers=auth).json()["accepted"] == 3
    page = app_client.get(f"/api/v1/audiences/{list_id}/refused?limit=2", headers=auth).json()
    assert [row["line"] for row in page["items"]] == [4, 6] and page["next_after_line"] == 6
    rest = app_client.get(f"/api/v1/audiences/{list_id}/refused?after_line=6", headers=auth).json()
    assert rest == {"items": [{"line": 7, "reason": "empty_row"}], "next_after_line": None}
    assert app_client.get("/api/v1/audiences", headers=auth).json()["total"] == 1

    notice = notice_body(
        channels=["sms"], urgency="normal", body="((name))您好，请到((地址))领取物资。", audience={"lists": [list_id]}
    )
    r = app_client.post("/api/v1/notices", json=notice, headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["recipient_count"] == 3
    wait_for(lambda: len(fake_providers["aliyun_sms"].sent) == 3)
    assert sorted(m.text for m in fake_providers["aliyun_sms"].sent) == [
        "王五您好，请到柯城区一号领取物资。",
        "赵六您好，请到衢江区二号领取物资。",
        "钱七您好，请到江山市三号领取物资。",
    ]
    unknown = app_client.post("/api/v1/notices", json={**notice, "body": "((电话))"}, headers=auth)
    assert unknown.json()["error"]["code"] == "unknown_placeholder"


def test_upload_gb18030_and_xlsx(app_client: TestClient, agency: Agency, auth: dict[str, str]) -> None:
    gbk = "手机号,姓名\n13900000011,张三\n1390000001,李四\n".encode("gb18030")
    body = upload(app_client, auth, gbk)
    assert (body["accepted"], body["refused_rows"]) == (1, [{"line": 3, "reason": "invalid_phone"}])
    assert body["columns"] == ["name"]

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["phone", "name", "room"])
    sheet.append([13900000021, "王五", 301])
    sheet.append(["abc", "赵六", 302])
    sheet.append(["13900000022", "钱七", None])
    buffer = io.BytesIO()
    book.save(buffer)
    body = upload(app_client, auth, buffer.getvalue(), filename="list.xlsx")
    assert (body["accepted"], body["refused_rows"]) == (2, [{"line": 3, "reason": "invalid_phone"}])
    assert body["columns"] == ["name", "room"]


def test_upload_refusals_and_scoping(
    app_client: TestClient, session: Session, agency: Agency, auth: dict[str, str]
) -> None:
    r = app_client.post("/api/v1/audiences", headers=auth, files={"file": ("a.csv", b"name\nx\n", "text/csv")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_phone_column"
    r = app_client.post("/api/v1/audiences", headers=auth, files={"file": ("a.xlsx", b"PK\x03\x04junk", "x")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "file_invalid"
    assert app_client.get("/api/v1/audiences", headers=auth).json()["total"] == 0  # nothing half-imported
    list_id = upload(app_client, auth, b"phone\n13900000031\n")["id"]
    other = make_agency(session, code="qz-rsj", name="衢州市人社局")
    oh = {"Authorization": f"Bearer {make_key(session, other, ['notices:send', 'notices:read']).key}"}
    assert app_client.get(f"/api/v1/audiences/{list_id}", headers=oh).status_code == 404
    assert app_client.delete(f"/api/v1/audiences/{list_id}", headers=oh).status_code == 404
    stolen = app_client.post(
        "/api/v1/notices", json=notice_body(channels=["sms"], body="x", audience={"lists": [list_id]}), headers=oh
    )
    assert stolen.status_code == 422 and stolen.json()["error"]["code"] == "unknown_audience_list"
    assert app_client.delete(f"/api/v1/audiences/{list_id}", headers=auth).status_code == 204
    assert app_client.get(f"/api/v1/audiences/{list_id}", headers=auth).status_code == 404


def test_upload_larger_than_the_json_body_limit(app_client: TestClient, agency: Agency, auth: dict[str, str]) -> None:
    rows = 60_000  # about 1.5 MB: over GOVCONNECT_MAX_BODY_BYTES, streamed to disk and into the table
    content = "phone,name\n" + "".join(f"139{i:08d},居民{i}\n" for i in range(rows)) + "13900000000,重复\n"
    assert len(content.encode()) > 1_048_576
    body = upload(app_client, auth, content.encode())
    assert (body["accepted"], body["duplicates"], body["refused"]) == (rows, 1, 0)
    too_big = app_client.post(
        "/api/v1/notices", content=b"x" * 1_100_000, headers={**auth, "content-type": "application/json"}
    )
    assert too_big.status_code == 413  # other routes keep the small limit
