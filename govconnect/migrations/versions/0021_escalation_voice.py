"""escalation's voice step

Revision ID: 0021
Revises: 0020

`notice.escalate_voice_after_seconds`: an escalating notice phones whoever its SMS did not reach,
and, when urgent, whoever has still not read it this long after the first message.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice") as batch_op:
        batch_op.add_column(sa.Column("escalate_voice_after_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice") as batch_op:
        batch_op.drop_column("escalate_voice_after_seconds")
