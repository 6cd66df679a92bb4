"""report rollups: counters per agency, Beijing day, channel and provider; failures by reason

Revision ID: 0013
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("agency_id", "day", "channel", "provider")
COUNTERS = (
    "notices",
    "deliveries",
    "sent",
    "delivered",
    "failed",
    "unknown",
    "cancelled",
    "sms_parts",
    "optouts",
    "approvals",
    "approval_seconds",
    *(f"ttd_b{i}" for i in range(12)),
)


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "report_rollup",
        *_key_columns(),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in COUNTERS),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_rollup", schema=None) as batch_op:
        batch_op.create_index("uq_report_rollup_key", list(KEY), unique=True)
        batch_op.create_index(batch_op.f("ix_report_rollup_agency_id"), ["agency_id"], unique=False)
    op.create_table(
        "report_failure",
        *_key_columns(),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_failure", schema=None) as batch_op:
        batch_op.create_index("uq_report_failure_key", [*KEY, "reason"], unique=True)
        batch_op.create_index(batch_op.f("ix_report_failure_agency_id"), ["agency_id"], unique=False)


def downgrade() -> None:
    op.drop_table("report_failure")
    op.drop_table("report_rollup")
