"""Every importer reads through the bounded table reader: bad files give a message and exit 1, or a 4xx."""

from __future__ import annotations

import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from contacts.models import Contact
from govconnect.citizens.models import Subscriber
from tests.factories import make_categories
from tests.govconnect.notices.conftest import agency, app_client, auth, fake_providers, pipeline_settings  # noqa: F401
from tests.govconnect.test_cli import cli_env, run  # noqa: F401 - fixture reuse


def inflating_workbook(path: Path) -> None:
    """A workbook of a few hundred KB whose shared strings inflate to 64 MiB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as handle:
            for _ in range(64):
                handle.write((b"<si><t>" + b"A" * 1000 + b"</t></si>") * 1000)


def test_contacts_import_refuses_bombs_and_huge_fields_with_exit_1(
    cli_env: dict[str, str],  # noqa: F811
    session: Session,
    tmp_path: Path,
) -> None:
    bomb = tmp_path / "bomb.xlsx"
    inflating_workbook(bomb)
    out = run(["contacts", "import", str(bomb)], cli_env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "XLSX" in out.stderr and "MB" in out.stderr
    wide = tmp_path / "wide.csv"
    wide.write_text("姓名,部门,手机\n张三,衢州市财政局," + "1" * 200_000 + "\n", encoding="utf-8")
    out = run(["contacts", "import", str(wide)], cli_env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "line 2" in out.stderr and "4096" in out.stderr
    assert session.exec(select(Contact)).all() == []


def test_subscribers_import_refuses_huge_fields_and_reads_xlsx(
    cli_env: dict[str, str],  # noqa: F811
    session: Session,
    tmp_path: Path,
) -> None:
    import openpyxl

    make_categories(session)
    wide = tmp_path / "wide.csv"
    wide.write_text("phone,name\n13800000001,张三\n13800000002," + "x" * 200_000 + "\n", encoding="utf-8")
    out = run(["subscribers", "import", str(wide)], cli_env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "line 3" in out.stderr
    session.expire_all()
    assert session.exec(select(Subscriber)).all() == []  # nothing half-imported
    bomb = tmp_path / "bomb.xlsx"
    inflating_workbook(bomb)
    out = run(["subscribers", "import", str(bomb)], cli_env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "XLSX" in out.stderr
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["phone", "name", "categories"])
    sheet.append([13800000003, "王五", "yjyj"])
    good = tmp_path / "subs.xlsx"
    book.save(good)
    out = run(["subscribers", "import", str(good)], cli_env)
    assert "created 1" in out.stdout
    session.expire_all()
    assert [s.phone for s in session.exec(select(Subscriber)).all()] == ["13800000003"]


def test_notice_audience_csv_with_a_huge_field_is_a_422(
    app_client: TestClient,  # noqa: F811
    auth: dict[str, str],  # noqa: F811
) -> None:
    body = {
        "title": "通知",
        "body": "((name))您好",
        "category": "yjyj",
        "channels": ["sms"],
        "audience": {"csv": "phone,name\n13800000001," + "x" * 200_000 + "\n"},
    }
    r = app_client.post("/api/v1/notices", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "csv_invalid"
    assert "2" in r.json()["error"]["message"]  # the line it could not take
