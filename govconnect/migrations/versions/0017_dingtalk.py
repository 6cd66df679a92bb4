"""DingTalk work notices: staff get a DingTalk user id, deliveries record when they were read

Revision ID: 0017
Revises: 0016

`dir_contact.dingtalk_userid` is where the audience resolver addresses `dingtalk` deliveries
(empty: the person has none). `delivery.read_at` is when the provider reported the message read
(DingTalk's getsendresult `read_user_id_list`): reading is a fact beside the delivery status,
not another status, so `delivered` stays final and every count of delivered messages holds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dir_contact") as batch_op:
        batch_op.add_column(
            sa.Column("dingtalk_userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
        batch_op.create_index("ix_dir_contact_dingtalk_userid", ["dingtalk_userid"])
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_column("read_at")
    with op.batch_alter_table("dir_contact") as batch_op:
        batch_op.drop_index("ix_dir_contact_dingtalk_userid")
        batch_op.drop_column("dingtalk_userid")
