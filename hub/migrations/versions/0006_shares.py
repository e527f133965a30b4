"""Sharing servers: shares with users or groups, and share codes (links).

Adds the ``shares`` table (a server shared with one user or one group, optionally until a time) and the
``share_codes`` table (the SHA-256 of each share link's code, its server, expiry and how often it was
accepted). Both start empty and go with their server, user or group (foreign keys with ON DELETE CASCADE).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("server_id", "user_id", name="uq_shares_server_id_user_id"),
        sa.UniqueConstraint("server_id", "group_id", name="uq_shares_server_id_group_id"),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shares_server_id"), ["server_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shares_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shares_group_id"), ["group_id"], unique=False)

    op.create_table(
        "share_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("hashed", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exchange_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_exchanged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("share_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_codes_server_id"), ["server_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_share_codes_hashed"), ["hashed"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("share_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_codes_hashed"))
        batch_op.drop_index(batch_op.f("ix_share_codes_server_id"))
    op.drop_table("share_codes")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shares_group_id"))
        batch_op.drop_index(batch_op.f("ix_shares_user_id"))
        batch_op.drop_index(batch_op.f("ix_shares_server_id"))
    op.drop_table("shares")
