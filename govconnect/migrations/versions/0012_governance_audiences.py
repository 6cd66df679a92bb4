"""governance (gov-b): saved audience lists, suppression list, daily SMS counts, message templates, agency senders

Revision ID: 0012
Revises: 0006

New tables only (no existing table changes), so the migration is the same on SQLite and PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString
When = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "audience_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", String(length=200), nullable=False),
        sa.Column("filename", String(length=255), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("status", String(length=16), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audience_list_agency_id", "audience_list", ["agency_id"])
    op.create_table(
        "audience_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("phone", String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["audience_list.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "phone", name="uq_audience_member_list_phone"),
    )
    op.create_table(
        "audience_refusal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["audience_list.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audience_refusal_list_id", "audience_refusal", ["list_id"])
    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", String(length=64), nullable=False),
        sa.Column("phone_hint", String(length=20), nullable=False),
        sa.Column("source", String(length=32), nullable=False),
        sa.Column("reason", String(length=200), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("created_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone_hash"),
    )
    op.create_table(
        "sms_day_count",
        sa.Column("day", String(length=10), nullable=False),
        sa.Column("phone_hash", String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "phone_hash"),
    )
    op.create_table(
        "message_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.Column("deleted_at", When(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_template_agency_id", "message_template", ["agency_id"])
    op.create_table(
        "message_template_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", String(length=200), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("created_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["message_template.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_id", "version", name="uq_template_version"),
    )
    op.create_index("ix_message_template_version_template_id", "message_template_version", ["template_id"])
    op.create_table(
        "notice_template_use",
        sa.Column("notice_id", String(length=32), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notice.id"]),
        sa.ForeignKeyConstraint(["template_id"], ["message_template.id"]),
        sa.PrimaryKeyConstraint("notice_id"),
    )
    op.create_table(
        "agency_sender",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("sms_sign_name", String(length=64), nullable=False),
        sa.Column("sms_template_code", String(length=64), nullable=False),
        sa.Column("urgent_ignores_suppression", sa.Boolean(), nullable=False),
        sa.Column("updated_at", When(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("agency_id"),
    )


def downgrade() -> None:
    op.drop_table("agency_sender")
    op.drop_table("notice_template_use")
    op.drop_index("ix_message_template_version_template_id", table_name="message_template_version")
    op.drop_table("message_template_version")
    op.drop_index("ix_message_template_agency_id", table_name="message_template")
    op.drop_table("message_template")
    op.drop_table("sms_day_count")
    op.drop_table("suppression")
    op.drop_index("ix_audience_refusal_list_id", table_name="audience_refusal")
    op.drop_table("audience_refusal")
    op.drop_table("audience_member")
    op.drop_index("ix_audience_list_agency_id", table_name="audience_list")
    op.drop_table("audience_list")
