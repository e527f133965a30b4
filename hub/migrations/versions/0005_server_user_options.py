"""Servers remember the resources chosen at their start: memory, CPUs and the GPUs they were given.

Adds ``servers.user_options`` (the chosen limits as JSON) and ``servers.gpu_ids`` (the host GPUs a running
server holds); both empty for existing servers, which keep running with the limits they were started with.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_options", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("gpu_ids", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("gpu_ids")
        batch_op.drop_column("user_options")
