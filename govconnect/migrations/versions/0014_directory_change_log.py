"""directory change log: every node's search index follows the database

Revision ID: 0014
Revises: 0013

Each `serve` node keeps its own search index; writes append a row here in the same transaction
as the change, and every node applies the rows after its cursor (contacts/index_sync.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dir_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dir_change_created_at", "dir_change", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dir_change_created_at", table_name="dir_change")
    op.drop_table("dir_change")
