"""Migration 0006 (deliveries without a status index) upgrades data in place and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from govconnect.db import alembic_config, make_engine, upgrade
from tests.conftest import PG_ADMIN_URL, RUN_ID


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"gc_migrate_{RUN_ID}_{tmp_path.name[-8:].replace('-', '_')}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_agency_and_notice(conn: Connection, status: str) -> None:
    """Agency 1 and its notice `n1` in `status`, as the schema before 0006 holds them (raw SQL: no models)."""
    conn.execute(
        text(
            "INSERT INTO agency (id, name, code, region, daily_limit, created_at)"
            " VALUES (1, 'a', 'a', 'r', 10, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO notice (id, agency_id, title, body, category, regions, urgency, channels, audience,"
            " status, public, recipient_count, created_at) VALUES"
            " ('n1', 1, 't', 'b', '', '[]', 'normal', '[]', '{}', :status, false, 0, CURRENT_TIMESTAMP)"
        ),
        {"status": status},
    )


def test_0006_clears_the_marker_of_finished_deliveries_and_downgrades(fresh_url: str) -> None:
    upgrade(fresh_url, "0005")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            seed_agency_and_notice(conn, "sending")
            for i, status in enumerate(("queued", "sending", "sent", "delivered", "failed")):
                conn.execute(
                    text(
                        "INSERT INTO delivery (id, notice_id, channel, provider, recipient, params, status, priority,"
                        " attempts, parts, uncertain, receipts, next_attempt_at, created_at, updated_at)"
                        " VALUES (:id, 'n1', 'sms', '', :r, '{}', :s, 1, 0, 1, false, 0, CURRENT_TIMESTAMP,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": f"d{i}", "r": f"1390000000{i}", "s": status},
                )
        upgrade(fresh_url, "0006")
        with engine.connect() as conn:
            pending = conn.execute(text("SELECT status FROM delivery WHERE next_attempt_at IS NOT NULL")).scalars()
            assert sorted(pending) == ["queued", "sending"]
        assert "ix_delivery_pending" in {i["name"] for i in inspect(engine).get_indexes("delivery")}
        command.downgrade(alembic_config(fresh_url), "0005")
        names = {i["name"] for i in inspect(engine).get_indexes("delivery")}
        assert {"ix_delivery_status_next", "ix_delivery_notice_status"} <= names
        assert "ix_delivery_pending" not in names
        upgrade(fresh_url)
    finally:
        engine.dispose()


GOVERNANCE_TABLES = {
    "audience_list",
    "audience_member",
    "audience_refusal",
    "suppression",
    "sms_day_count",
    "message_template",
    "message_template_version",
    "notice_template_use",
    "agency_sender",
}


def test_0012_governance_tables_up_down_up(fresh_url: str) -> None:
    upgrade(fresh_url, "0012")
    engine = make_engine(fresh_url)
    try:
        assert GOVERNANCE_TABLES <= set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sms_day_count (day, phone_hash, count) VALUES ('2026-01-01', 'h', 1)"))
        command.downgrade(alembic_config(fresh_url), "0006")
        assert not GOVERNANCE_TABLES & set(inspect(engine).get_table_names())
        upgrade(fresh_url)
        assert GOVERNANCE_TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0019_adds_held_reason_and_clears_errors_of_sent_deliveries(fresh_url: str) -> None:
    upgrade(fresh_url, "0005")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            seed_agency_and_notice(conn, "sending")
            for i, status in enumerate(("queued", "sent", "delivered", "failed")):
                conn.execute(
                    text(
                        "INSERT INTO delivery (id, notice_id, channel, provider, recipient, params, status, priority,"
                        " attempts, parts, uncertain, receipts, error_code, error_reason, created_at, updated_at)"
                        " VALUES (:id, 'n1', 'sms', '', :r, '{}', :s, 1, 2, 1, false, 0, 'timeout', 'read timeout',"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": f"d{i}", "r": f"1390000000{i}", "s": status},
                )
        upgrade(fresh_url, "0019")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, error_code, error_reason, held_reason FROM delivery")).all()
        by_status = {row[0]: tuple(row[1:]) for row in rows}
        assert by_status["sent"] == by_status["delivered"] == (None, None, None)
        assert by_status["queued"] == by_status["failed"] == ("timeout", "read timeout", None)
        command.downgrade(alembic_config(fresh_url), "0018")
        assert "held_reason" not in {c["name"] for c in inspect(engine).get_columns("delivery")}
        upgrade(fresh_url)
    finally:
        engine.dispose()
