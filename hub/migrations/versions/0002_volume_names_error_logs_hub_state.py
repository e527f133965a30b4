"""Each account's own volume name, a server's log lines apart from its error, and the hub_state table.

Adds ``users.volume_name`` and ``servers.error_log`` and the ``hub_state`` key/value table, and moves
what existing rows hold into them, so nothing is lost:

- an account whose server row names a volume (``hub-vol-<user>``, the scheme before accounts owned
  their volumes) keeps that volume: its files stay where they are;
- an error message that carried its log lines after ``Last lines of its log:`` is split in two.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
LOG_SEPARATOR = "\n\nLast lines of its log:\n"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("volume_name", sa.String(length=128), nullable=True))
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("error_log", sa.Text(), nullable=True))
    op.create_table(
        "hub_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    connection = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("volume_name", sa.String))
    servers = sa.table(
        "servers",
        sa.column("id", sa.Integer),
        sa.column("user_id", sa.Integer),
        sa.column("volume_name", sa.String),
        sa.column("error", sa.Text),
        sa.column("error_log", sa.Text),
    )
    for user_id, volume in connection.execute(
        sa.select(servers.c.user_id, servers.c.volume_name).where(servers.c.volume_name.is_not(None))
    ).all():
        connection.execute(users.update().where(users.c.id == user_id).values(volume_name=volume))
    for server_id, error in connection.execute(
        sa.select(servers.c.id, servers.c.error).where(servers.c.error.like(f"%{LOG_SEPARATOR}%"))
    ).all():
        message, _, tail = error.partition(LOG_SEPARATOR)
        connection.execute(servers.update().where(servers.c.id == server_id).values(error=message, error_log=tail))


def downgrade() -> None:
    op.drop_table("hub_state")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("error_log")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("volume_name")
