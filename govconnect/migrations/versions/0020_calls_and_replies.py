"""click-to-dial calls, inbound SMS replies, meeting notices

Revision ID: 0020
Revises: 0019

`dial_call` is one row per 双呼 call (govconnect/calls): who asked, which contact or delivery,
the provider's CallId and how the call ended; numbers are not stored. `notice_reply` keeps
every inbound SMS that is not an opt-out, linked to the last notice sent to the number within
7 days. `notice.replies` is "attendance" for a meeting notice whose replies 1/2 are tallied;
`notice.escalate_after_seconds` sends unread DingTalk/WeCom deliveries by SMS after that long.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dial_call",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("target_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("leg", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("provider_call_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dial_call") as batch_op:
        batch_op.create_index(batch_op.f("ix_dial_call_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dial_call_staff_user_id"), ["staff_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dial_call_provider_call_id"), ["provider_call_id"], unique=False)
    op.create_table(
        "notice_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notice.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("notice_reply") as batch_op:
        batch_op.create_index("ix_notice_reply_notice", ["notice_id", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_reply_agency_id"), ["agency_id"], unique=False)
    with op.batch_alter_table("notice") as batch_op:
        batch_op.add_column(
            sa.Column("replies", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("escalate_after_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice") as batch_op:
        batch_op.drop_column("escalate_after_seconds")
        batch_op.drop_column("replies")
    op.drop_table("notice_reply")
    op.drop_table("dial_call")
