"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}. Drafted by `python -m hub.migrate new`: read it,
keep alterations inside ``op.batch_alter_table`` (SQLite rebuilds the table), and grow tests/e2e/test_upgrade.py.
"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
