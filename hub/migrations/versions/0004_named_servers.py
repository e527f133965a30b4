"""Named servers: a user may have several servers, each with a name ("" is the default server).

Adds ``servers.name`` (every existing server becomes its user's default server, name ""), and replaces the
one-server-per-user constraint (unique ``user_id``) with one name per user (unique ``user_id, name``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 0001 made the unique constraint on user_id without a name: SQLite keeps it nameless, so batch mode is told
# which name to give it when it reads the table, and PostgreSQL named it itself (servers_user_id_key).
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _user_id_constraint() -> str:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return "uq_servers_user_id"
    for constraint in sa.inspect(bind).get_unique_constraints("servers"):
        if constraint["column_names"] == ["user_id"] and constraint["name"]:
            return str(constraint["name"])
    raise RuntimeError("servers: the unique constraint on user_id was not found")


def upgrade() -> None:
    old = _user_id_constraint()
    with op.batch_alter_table("servers", schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=32), server_default="", nullable=False))
        batch_op.drop_constraint(old, type_="unique")
        batch_op.create_unique_constraint("uq_servers_user_id_name", ["user_id", "name"])
        batch_op.create_index(batch_op.f("ix_servers_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM servers WHERE name != ''"))
    with op.batch_alter_table("servers", schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servers_user_id"))
        batch_op.drop_constraint("uq_servers_user_id_name", type_="unique")
        batch_op.create_unique_constraint("uq_servers_user_id", ["user_id"])
        batch_op.drop_column("name")
