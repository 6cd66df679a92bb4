"""A deleted row's id is never handed to a new row (SQLite AUTOINCREMENT, migration 0015; PostgreSQL sequences)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from govconnect.db import alembic_config, make_engine, upgrade
from tests.govconnect.test_migrations import fresh_url  # noqa: F401 - fixture

NEW_CONTACT = (
    "INSERT INTO dir_contact (name, department_id, position, office_phone, mobile, short_number, email,"
    " visibility, sort_order, created_at, updated_at)"
    " VALUES (:name, 1, '', '', '', '', '', 'public', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def _add_contact(conn, name: str) -> int:  # type: ignore[no-untyped-def]
    conn.execute(text(NEW_CONTACT), {"name": name})
    return int(conn.execute(text("SELECT id FROM dir_contact WHERE name = :n"), {"n": name}).scalar_one())


def test_deleted_contact_ids_are_not_reused_after_0015(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url, "0011")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO dir_department (id, parent_id, name, path, aliases, sort_order, created_at)"
                    " VALUES (1, NULL, '衢州市应急管理局', '衢州市应急管理局', '[]', 0, CURRENT_TIMESTAMP)"
                )
            )
            first = _add_contact(conn, "张伟")
            conn.execute(
                text(
                    "INSERT INTO audit (at, agency_id, actor, client_address, action, target_type, target_id, changes)"
                    " VALUES (CURRENT_TIMESTAMP, NULL, 'cli', '', 'sign_in', '', '', '{}')"
                )
            )
        upgrade(fresh_url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM dir_contact WHERE id = :i"), {"i": first}).scalar_one() == "张伟"
            second = _add_contact(conn, "李娜")
            conn.execute(text("DELETE FROM dir_contact WHERE id = :i"), {"i": second})
            third = _add_contact(conn, "王芳")
        assert third > second > first  # before 0015, SQLite gave 王芳 李娜's id
        # The rebuilt audit table is still append-only.
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("UPDATE audit SET actor = 'x'"))
        if fresh_url.startswith("sqlite"):
            command.downgrade(alembic_config(fresh_url), "0011")
            upgrade(fresh_url)
            with engine.begin() as conn:
                assert conn.execute(text("SELECT count(*) FROM dir_contact")).scalar_one() == 2
    finally:
        engine.dispose()
