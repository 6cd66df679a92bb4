"""deliveries: no index on status, so claims and receipts are HOT updates; a partial index on pending work

Revision ID: 0006
Revises: 0005

`status` changes three times in a delivery's life. While it was indexed, every change wrote a
new entry in all six indexes, and a stale planner estimate for `status = 'queued'` made each
claim scan every queued delivery of a broadcast (30 ms for 100 rows at 200,000). Now only
`next_attempt_at` marks pending work: it is set while a delivery is queued or sending and
cleared when it is sent or final, so the sweeper finds pending work through a small partial
index and the other status changes touch no index at all.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "next_attempt_at IS NOT NULL"


def upgrade() -> None:
    op.execute(
        "UPDATE delivery SET next_attempt_at = NULL "
        "WHERE next_attempt_at IS NOT NULL AND status NOT IN ('queued', 'sending')"
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status_next")
        batch_op.drop_index("ix_delivery_notice_status")
    op.create_index(
        "ix_delivery_pending",
        "delivery",
        ["notice_id", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Room on each page for the new row versions of HOT updates (claim, receipt).
        op.execute("ALTER TABLE delivery SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE delivery RESET (fillfactor)")
    op.drop_index("ix_delivery_pending", table_name="delivery")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_notice_status", ["notice_id", "status"], unique=False)
        batch_op.create_index("ix_delivery_status_next", ["status", "next_attempt_at"], unique=False)
