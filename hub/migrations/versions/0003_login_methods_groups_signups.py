"""Accounts belong to a login method; groups; sign-up requests; forced password changes; encrypted auth state.

Adds ``users.auth_method`` (None for existing accounts: the hub gives them a method when it
starts, so they keep logging in as before), ``users.auth_subject`` (the provider's fixed id of the
person, bound at their first single sign-on login), ``users.password_must_change``
(false for everyone), ``users.auth_state`` (empty), and the ``groups``, ``user_groups`` and
``signup_requests`` tables (empty).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_groups_name"), ["name"], unique=True)

    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "user_groups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "group_id"),
    )
    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_groups_group_id"), ["group_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_method", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("auth_subject", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("password_must_change", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("auth_state", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("auth_state")
        batch_op.drop_column("password_must_change")
        batch_op.drop_column("auth_subject")
        batch_op.drop_column("auth_method")

    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_groups_group_id"))

    op.drop_table("user_groups")
    op.drop_table("signup_requests")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_groups_name"))

    op.drop_table("groups")
