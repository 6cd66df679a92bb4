"""SQLite: integer ids are never reused (AUTOINCREMENT)

Revision ID: 0015
Revises: 0011

Without AUTOINCREMENT, SQLite hands the id of the newest deleted row to the next insert, so a
deleted contact's bookmarked card (/m/staff/contacts/{id}) showed the next person added, and an
audit row id could name two different events. PostgreSQL's sequences never reuse ids; this
rebuilds the SQLite tables with AUTOINCREMENT (data, indexes and constraints are copied by
Alembic's batch mode). Tables created later pass `sqlite_autoincrement` themselves
(`govconnect.model_registry` sets it on every table with an integer key).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with a single integer key at revision 0011 (dir_change already had AUTOINCREMENT).
TABLES = (
    "agency",
    "agency_policy",
    "agency_sender",
    "api_key",
    "audience_list",
    "audience_member",
    "audience_refusal",
    "audit",
    "category",
    "dir_contact",
    "dir_department",
    "dir_region",
    "message_template",
    "message_template_version",
    "notice_approval",
    "notice_outbox",
    "notice_schedule",
    "public_region",
    "report_failure",
    "report_rollup",
    "staff_user",
    "subscriber",
    "suppression",
    "verification_code",
)
SQLITE_AUDIT_TRIGGER = (
    "CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit rows cannot be changed or deleted'); END"
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_append_only")  # the rebuild drops the old table's triggers
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    op.execute(SQLITE_AUDIT_TRIGGER)


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
