"""Migration 0013 (report rollups) goes up and down on both databases, and its upsert key works."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import inspect

from govconnect.db import alembic_config, make_engine, upgrade
from govconnect.reports.rollup import RollupChanges, write_changes
from tests.govconnect.test_migrations import fresh_url  # noqa: F401


def test_0013_up_down_up(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        assert {"report_rollup", "report_failure"} <= set(inspect(engine).get_table_names())
        changes = RollupChanges()
        changes.add((1, date(2026, 12, 1), "sms", "aliyun_sms"), "sent", 2)
        changes.fail((1, date(2026, 12, 1), "sms", "aliyun_sms"), "isv.X")
        with engine.begin() as conn:
            write_changes(conn, changes)
            write_changes(conn, changes)  # the unique key turns the second into increments
            row = conn.exec_driver_sql("SELECT sent, failed, ttd_b0 FROM report_rollup").one()
            reasons = conn.exec_driver_sql("SELECT reason, count FROM report_failure").all()
        assert tuple(row) == (4, 2, 0)
        assert [tuple(r) for r in reasons] == [("isv.X", 2)]
        command.downgrade(alembic_config(fresh_url), "0009")
        engine.dispose()
        assert not {"report_rollup", "report_failure"} & set(inspect(engine).get_table_names())
        upgrade(fresh_url)
        assert "report_rollup" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
