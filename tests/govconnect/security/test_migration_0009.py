"""Migration 0009 (staff_session) goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from govconnect.db import alembic_config, make_engine, upgrade
from tests.govconnect.test_migrations import fresh_url

__all__ = ["fresh_url"]


def test_0009_up_and_down(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        assert "staff_session" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(fresh_url), "0009-1")
        assert "staff_session" not in inspect(engine).get_table_names()
        upgrade(fresh_url)
        assert {c["name"] for c in inspect(engine).get_columns("staff_session")} >= {"id_hash", "revoked_at"}
    finally:
        engine.dispose()
