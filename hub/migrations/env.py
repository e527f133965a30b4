"""Alembic's environment: run the revisions on the connection that `hub.migrate` hands over.

`hub.migrate` opens that connection, holds the migration lock and the transaction, so this file only
configures Alembic. There is no alembic.ini and no offline (SQL script) mode.
"""

from alembic import context

from hub.models import Base

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations with `hub db upgrade` or hub.migrate, not with the alembic command")
# render_as_batch: drafts made by `python -m hub.migrate new` alter tables in batch mode, which SQLite needs.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
