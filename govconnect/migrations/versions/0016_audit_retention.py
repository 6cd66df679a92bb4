"""audit rows: append-only, except for retention past AUDIT_DAYS

Revision ID: 0016
Revises: 0015

The PostgreSQL trigger of 0011 refused every UPDATE and DELETE on `audit`, so the retention
setting (`GOVCONNECT_RETENTION__AUDIT_DAYS`) could never be applied. It now lets a DELETE through
when the transaction set `govconnect.retention` (`SET LOCAL`, done only by
govconnect/operations/retention.py); UPDATE stays refused always. SQLite's trigger only ever
refused UPDATE (the suite empties SQLite tables with DELETE), so it is unchanged.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_RETENTION = """
CREATE OR REPLACE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('govconnect.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit rows cannot be changed or deleted' USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
WITHOUT = """
CREATE OR REPLACE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows cannot be changed or deleted' USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WITH_RETENTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WITHOUT)
