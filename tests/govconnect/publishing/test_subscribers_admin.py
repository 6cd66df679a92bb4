import csv
import io
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from govconnect.agencies.models import Agency
from govconnect.citizens.models import Subscriber
from govconnect.citizens.optout import leave
from govconnect.citizens.subscriptions import clean_preferences, ensure_defaults, subscribe_phone
from govconnect.clock import utcnow
from tests.factories import make_key
from tests.govconnect.test_cli import run


def _people(session: Session) -> None:
    ensure_defaults(session)
    prefs = clean_preferences(session, ["yjyj"], ["江山市"], ["sms"])
    subscribe_phone(session, "13812345678", prefs)
    gone = subscribe_phone(session, "13987654321", prefs)
    leave(session, gone, "web")
    gone.unsubscribed_at = utcnow() - timedelta(days=100)
    session.add(gone)
    session.commit()


def test_api_needs_subscribers_read_and_masks(client: TestClient, session: Session, agency: Agency) -> None:
    _people(session)
    sender = make_key(session, agency, ["notices:send"])
    reader = make_key(session, agency, ["subscribers:read"])
    assert client.get("/api/v1/subscribers").status_code == 401
    denied = client.get("/api/v1/subscribers", headers={"Authorization": f"Bearer {sender.key}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    page = client.get("/api/v1/subscribers", headers={"Authorization": f"Bearer {reader.key}"})
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 2 and body["active"] == 1
    assert [i["phone"] for i in body["items"]] == ["138****5678", "139****4321"]
    assert body["items"][0]["categories"] == ["yjyj"] and body["items"][0]["regions"] == ["江山市"]
    export = client.get("/api/v1/subscribers/export.csv", headers={"Authorization": f"Bearer {reader.key}"})
    assert export.status_code == 200 and "13812345678" not in export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["phone"] for r in rows] == ["138****5678", "139****4321"]
    bad = client.get("/api/v1/subscribers?limit=0", headers={"Authorization": f"Bearer {reader.key}"})
    assert bad.status_code == 422


def test_cli_purge_export_and_categories(session: Session, db_url: str, tmp_path: Path) -> None:
    cli_env = {
        "GOVCONNECT_DATABASE_URL": db_url,
        "GOVCONNECT_DATA_DIR": str(tmp_path),
        "GOVCONNECT_SECRET_KEY": "cli-test-secret",
        "GOVCONNECT_REDIS_URL": "",
    }
    _people(session)
    out = tmp_path / "subs.csv"
    run(["subscribers", "export", "--out", str(out)], cli_env)
    text = out.read_text(encoding="utf-8")
    assert "138****5678" in text and "13812345678" not in text
    bad = run(["subscribers", "purge", "--inactive-days", "0"], cli_env, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "purged 1 subscribers" in run(["subscribers", "purge", "--inactive-days", "30"], cli_env).stdout
    session.expire_all()
    assert [s.phone for s in session.exec(select(Subscriber)).all()] == ["13812345678"]
    run(["categories", "add", "weather", "气象服务"], cli_env)
    run(["categories", "disable", "jy"], cli_env)
    listing = run(["categories", "list"], cli_env).stdout
    assert "weather\t气象服务\tactive" in listing and "jy\t教育\tdisabled" in listing
    assert run(["categories", "disable", "nope"], cli_env, check=False).returncode != 0
