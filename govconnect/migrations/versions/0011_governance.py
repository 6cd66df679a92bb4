"""governance: notice sign-off and retraction columns, approvals, agency policy, schedules, the audit log

Revision ID: 0011
Revises: 0014

The audit table is append-only: the application refuses UPDATE and DELETE on it (see
`govconnect/audit/models.py`), and the database refuses them too — on PostgreSQL a row trigger
for UPDATE and DELETE, on SQLite a trigger for UPDATE (the test suite empties SQLite tables with
DELETE between tests; PostgreSQL's TRUNCATE, for operators only, fires no row trigger).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Text = sqlmodel.sql.sqltypes.AutoString
When = sqlmodel.sql.sqltypes.UTCDateTime

PG_REFUSE = """
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows cannot be changed or deleted' USING ERRCODE = 'insufficient_privilege';
END;
$$
"""
PG_TRIGGER = (
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_is_append_only()"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit rows cannot be changed or deleted'); END"
)


def upgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", Text(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("status_changed_at", When(), nullable=True))
        batch_op.add_column(sa.Column("status_changed_by", Text(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("rejected_reason", Text(length=500), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("retracted_reason", Text(length=500), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("retracted_at", When(), nullable=True))
        batch_op.add_column(sa.Column("corrects_id", Text(length=32), nullable=True))
        batch_op.add_column(sa.Column("review_due_at", When(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", When(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", Text(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notice_corrects_id"), ["corrects_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_schedule_id"), ["schedule_id"], unique=False)

    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        # Approvers are told by SMS that a notice waits for them.
        batch_op.add_column(sa.Column("phone", Text(length=20), nullable=True))

    op.create_table(
        "notice_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", Text(length=32), nullable=False),
        sa.Column("approver", Text(length=80), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notice.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notice_approval", schema=None) as batch_op:
        batch_op.create_index("ix_notice_approval_once", ["notice_id", "approver"], unique=True)

    op.create_table(
        "agency_policy",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("require_approval", Text(length=16), nullable=False),
        sa.Column("large_audience", sa.Integer(), nullable=False),
        sa.Column("approvers", sa.Integer(), nullable=False),
        sa.Column("urgent_at_once", sa.Boolean(), nullable=False),
        sa.Column("review_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("agency_id"),
    )

    op.create_table(
        "notice_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("created_by", Text(length=80), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("rule", Text(length=16), nullable=False),
        sa.Column("first_at", When(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("next_at", When(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.Column("cancelled_at", When(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notice_schedule", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_schedule_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_schedule_next_at"), ["next_at"], unique=False)

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", When(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("actor", Text(length=80), nullable=False),
        sa.Column("client_address", Text(length=64), nullable=False),
        sa.Column("action", Text(length=40), nullable=False),
        sa.Column("target_type", Text(length=40), nullable=False),
        sa.Column("target_id", Text(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index("ix_audit_agency_at", ["agency_id", "at"], unique=False)
        batch_op.create_index("ix_audit_target", ["target_type", "target_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_action"), ["action"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_REFUSE)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_is_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_append_only")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_action"))
        batch_op.drop_index("ix_audit_target")
        batch_op.drop_index("ix_audit_agency_at")
    op.drop_table("audit")
    with op.batch_alter_table("notice_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_schedule_next_at"))
        batch_op.drop_index(batch_op.f("ix_notice_schedule_agency_id"))
    op.drop_table("notice_schedule")
    op.drop_table("agency_policy")
    with op.batch_alter_table("notice_approval", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_approval_once")
    op.drop_table("notice_approval")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_column("phone")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_schedule_id"))
        batch_op.drop_index(batch_op.f("ix_notice_corrects_id"))
        for column in (
            "schedule_id",
            "reviewed_by",
            "reviewed_at",
            "review_due_at",
            "corrects_id",
            "retracted_at",
            "retracted_reason",
            "rejected_reason",
            "status_changed_by",
            "status_changed_at",
            "created_by",
        ):
            batch_op.drop_column(column)
