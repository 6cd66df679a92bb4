"""The audit log: one writer, an admin-only API with filters and a formula-safe CSV, and rows nobody can change."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from govconnect.agencies.models import Agency
from govconnect.audit.models import AuditEntry, AuditImmutable
from govconnect.audit.record import Actor, record_audit
from govconnect.clock import utcnow
from tests.factories import make_agency, make_key

A = AuditEntry.__table__  # type: ignore[attr-defined]


def _admin(session: Session, agency: Agency) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(session, agency, ['admin']).key}"}


def test_api_filters_pages_and_scopes_by_agency(app_client: TestClient, session: Session, agency: Agency) -> None:
    other = make_agency(session, code="qz-other")
    headers = _admin(session, agency)  # creating the key is audited too ("key_create", by the command line)
    moment = utcnow()
    actor = Actor("staff:7", agency.id, "10.0.0.8")
    record_audit(session, actor, "sign_in", "staff", 7, moment=moment - timedelta(hours=2))
    record_audit(session, actor, "policy_change", "agency", agency.id or 0, {"approvers": {"from": 1, "to": 2}})
    record_audit(session, Actor("staff:9", other.id), "sign_in", "staff", 9)
    session.commit()

    every = app_client.get("/api/v1/audit", headers=headers).json()
    assert every["total"] == 3  # the other agency's sign-in is not ours to see
    assert [e["action"] for e in every["items"]] == ["policy_change", "sign_in", "key_create"]  # newest first
    first = every["items"][0]
    assert first["actor"] == "staff:7" and first["client_address"] == "10.0.0.8"
    assert first["changes"] == {"approvers": {"from": 1, "to": 2}}

    signins = app_client.get("/api/v1/audit", params={"action": "sign_in"}, headers=headers).json()
    assert [e["target_id"] for e in signins["items"]] == ["7"]
    recent = app_client.get(
        "/api/v1/audit", params={"since": (moment - timedelta(hours=1)).isoformat()}, headers=headers
    ).json()
    assert [e["action"] for e in recent["items"]] == ["policy_change", "key_create"]
    assert (
        app_client.get("/api/v1/audit", params={"page_size": 1, "page": 2}, headers=headers).json()["items"][0][
            "action"
        ]
        == "sign_in"
    )

    bad = app_client.get("/api/v1/audit", params={"action": "nonsense"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    sender = {"Authorization": f"Bearer {make_key(session, agency, ['notices:send']).key}"}
    denied = app_client.get("/api/v1/audit", headers=sender)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"


def test_csv_export_neutralises_formulas(app_client: TestClient, session: Session, agency: Agency) -> None:
    actor = Actor("key:gc_x", agency.id, '=HYPERLINK("http://evil")')
    record_audit(session, actor, "template_change", "template", "-2+3", {"name": "@SUM(A1)", "text": "普通"})
    session.commit()
    r = app_client.get(
        "/api/v1/audit", params={"format": "csv", "action": "template_change"}, headers=_admin(session, agency)
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 1
    assert rows[0]["client_address"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["target_id"] == "'-2+3"
    assert rows[0]["action"] == "template_change"
    assert '"name": "@SUM(A1)"' in rows[0]["changes"] and "普通" in rows[0]["changes"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


def test_unknown_action_is_refused(session: Session, agency: Agency) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        record_audit(session, Actor("cli"), "did_something")


def _one_row(session: Session, agency: Agency) -> AuditEntry:
    record_audit(session, Actor("staff:1", agency.id), "sign_in", "staff", 1)
    session.commit()
    return session.exec(select(AuditEntry)).scalars().one()  # type: ignore[call-overload, no-any-return]


def test_application_cannot_change_or_delete_rows(engine: Engine, session: Session, agency: Agency) -> None:
    row = _one_row(session, agency)
    row.action = "sign_out"
    session.add(row)
    with pytest.raises(AuditImmutable):
        session.commit()
    session.rollback()
    session.delete(row)
    with pytest.raises(AuditImmutable):
        session.commit()
    session.rollback()
    with engine.begin() as conn, pytest.raises(AuditImmutable):
        conn.execute(update(A).values(actor="someone else"))
    with engine.begin() as conn, pytest.raises(AuditImmutable):
        conn.execute(delete(A))
    with Session(engine) as fresh:
        assert [(r.action, r.actor) for r in fresh.exec(select(AuditEntry)).scalars()] == [("sign_in", "staff:1")]  # type: ignore[call-overload]


def test_database_refuses_raw_sql_changes(engine: Engine, session: Session, agency: Agency) -> None:
    """Past the application (raw SQL): the database's own trigger refuses (UPDATE on both, DELETE on PostgreSQL)."""
    _one_row(session, agency)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE audit SET actor = 'someone else'"))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit")).scalars().all() == ["staff:1"]
