"""Usage pictures: samples of running servers and records of finished starts.

Adds ``usage_samples`` (each round of the sampler: when, and how many servers were running),
``usage_server_samples`` (each running server's CPU and memory at that round, with its limits) and
``spawn_records`` (each finished start: how long it took, whether it worked, the image). All start empty;
hub/usage.py fills them and deletes rows older than ``usage.keep_days``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("usage_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_samples_taken"), ["taken"], unique=False)

    op.create_table(
        "usage_server_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("server_name", sa.String(length=32), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("memory_limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("cpu_limit", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("usage_server_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_server_samples_taken"), ["taken"], unique=False)

    op.create_table(
        "spawn_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("server_name", sa.String(length=32), nullable=False),
        sa.Column("image_name", sa.String(length=64), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("spawn_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spawn_records_finished"), ["finished"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spawn_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spawn_records_finished"))
    op.drop_table("spawn_records")
    with op.batch_alter_table("usage_server_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_server_samples_taken"))
    op.drop_table("usage_server_samples")
    with op.batch_alter_table("usage_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_samples_taken"))
    op.drop_table("usage_samples")
