"""Migration 0011 (governance) keeps existing notices, adds the append-only audit table, and downgrades."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from govconnect.db import alembic_config, make_engine, upgrade
from tests.govconnect.test_migrations import fresh_url, seed_agency_and_notice  # noqa: F401 - fixture


def test_0011_upgrades_existing_notices_and_downgrades(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url, "0006")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            seed_agency_and_notice(conn, "completed")
        upgrade(fresh_url, "0011")
        with engine.begin() as conn:
            row = conn.execute(text("SELECT status, created_by, retracted_reason FROM notice WHERE id = 'n1'")).one()
            assert tuple(row) == ("completed", "", "")
            conn.execute(
                text(
                    "INSERT INTO audit (at, agency_id, actor, client_address, action, target_type, target_id, changes)"
                    " VALUES (CURRENT_TIMESTAMP, 1, 'cli', '', 'sign_in', '', '', '{}')"
                )
            )
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("UPDATE audit SET actor = 'x'"))
        tables = set(inspect(engine).get_table_names())
        assert {"audit", "agency_policy", "notice_approval", "notice_schedule"} <= tables
        command.downgrade(alembic_config(fresh_url), "0006")
        inspector = inspect(engine)
        assert "audit" not in inspector.get_table_names()
        assert "created_by" not in {c["name"] for c in inspector.get_columns("notice")}
        upgrade(fresh_url)
    finally:
        engine.dispose()
