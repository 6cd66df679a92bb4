"""deliveries say why they wait; a sent delivery carries no earlier error

Revision ID: 0019
Revises: 0018

`held_reason` names what holds a queued delivery back (`quiet_hours`: a normal SMS or voice
message waits until 07:00 Beijing time, its `next_attempt_at`); the progress API, the staff
progress page and /metrics count it. It is set only while the delivery is queued, so it stays
out of every index (claims remain HOT updates).

Sent and delivered deliveries written before this revision kept the error code of an earlier
failed attempt; it is cleared (the pipeline now clears it when an attempt succeeds).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("held_reason", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE delivery SET error_code = NULL, error_reason = NULL "
        "WHERE status IN ('sent', 'delivered') AND (error_code IS NOT NULL OR error_reason IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("held_reason")
