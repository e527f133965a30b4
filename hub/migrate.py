"""Schema migrations: bring any database the hub ever made up to this version's schema, keeping every row.

The revisions are Alembic scripts in hub/migrations/versions (hub/migrations/README.md says how to add one).
`upgrade` runs at every start of the hub and its command line, and as ``hub db upgrade``:

- a database at the newest revision: nothing happens (one cheap read, no lock);
- an empty database: every revision runs, from the first;
- a database from before migrations (tables but no ``alembic_version``): it is marked as revision
  0001, the schema of commit 56aa053, then upgraded;
- an older revision: upgraded, after a copy of a SQLite file is made next to it
  (``hub.sqlite.bak-<old revision>-<time>``, readable by its owner only).

Two processes may upgrade at once (``hub db upgrade`` while the hub starts): the work happens under a lock
(SQLite's write lock, a PostgreSQL advisory lock), and whoever comes second finds nothing left to do.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import functools
import logging
import os
import re
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:  # Alembic is loaded only when a revision runs (about 10 MB and 0.2 s at every start otherwise)
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

log = logging.getLogger("hub.migrate")
logging.getLogger("alembic").setLevel(logging.WARNING)  # its set-up chatter; the steps are logged below
MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
"""The revision of the schema that databases made before migrations have (commit 56aa053)."""
BASELINE_COLUMNS = {
    "users": {"id", "name", "admin", "created", "last_activity", "password_hash", "sessions_valid_after"},
    "servers": {
        "id",
        "user_id",
        "image_name",
        "container_id",
        "container_name",
        "volume_name",
        "url",
        "state",
        "started",
        "last_activity",
        "route_secret",
        "error",
    },
    "api_tokens": {"id", "user_id", "hashed", "prefix", "note", "created", "expires_at", "last_activity"},
}
LOCK_WAIT_SECONDS = 120
REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(None|\"[^\"]*\"|'[^']*')\s*$", re.MULTILINE)
"""``revision = "0006"`` and ``down_revision = "0005"`` (or None) in a revision script."""
PG_LOCK_KEY = 0x68756264626D6967  # "hubdbmig": one advisory lock for every hub sharing a PostgreSQL database
_WRITE = "hub_migrate_write"


class MigrationError(Exception):
    """The database cannot be brought to this hub's schema; the message says why in plain words."""


@dataclass(frozen=True)
class Outcome:
    """What `upgrade` did."""

    before: str | None
    """The revision found; None for an empty database or one from before migrations."""
    after: str
    action: str
    """"up to date", "created", "adopted" (made before migrations, then upgraded) or "upgraded"."""
    backup: Path | None = None

    def describe(self) -> str:
        copy = f"; the database as it was is copied to {self.backup}" if self.backup else ""
        if self.action == "up to date":
            return f"the database schema is up to date (revision {self.after})"
        if self.action == "created":
            return f"created the database schema (revision {self.after})"
        if self.action == "adopted":
            return (
                f"found a database made before migrations; marked it as revision {BASELINE} "
                f"and upgraded it to revision {self.after}{copy}"
            )
        return f"upgraded the database schema from revision {self.before} to {self.after}{copy}"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, made in code: no alembic.ini. env.py migrates the connection given here."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    """The revisions in hub/migrations/versions, read once."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def head_revision() -> str:
    """The newest revision this hub knows: the one no other revision follows.

    Read from the ``revision = ...`` and ``down_revision = ...`` lines of the scripts, without Alembic, so that
    a start with an up-to-date database never loads it (tests/unit/test_migrate.py checks Alembic agrees).
    """
    follows: dict[str, str | None] = {}
    for script in sorted((MIGRATIONS / "versions").glob("[0-9]*.py")):
        source = script.read_text(encoding="utf-8")
        found: dict[str, str] = {match[1]: match[2] for match in REVISION_LINE.finditer(source)}
        if "revision" not in found or "down_revision" not in found:
            raise MigrationError(f"{script.name}: no revision = ... or down_revision = ... line")
        follows[ast.literal_eval(found["revision"])] = ast.literal_eval(found["down_revision"])
    heads = set(follows) - set(follows.values())
    assert len(heads) == 1, f"hub/migrations/versions must hold one newest revision, not {sorted(heads)}"
    return heads.pop()


def migration_engine(url: str) -> AsyncEngine:
    """An engine for migrating: one connection at a time, and for SQLite transactional DDL without cascades.

    SQLite: the driver's own transaction handling is off and this engine says BEGIN itself, so schema changes
    are part of the transaction too; foreign keys are off, because batch mode rebuilds a table by copying,
    dropping and renaming it, and with them on, dropping ``users`` would delete every server and token.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, poolclass=NullPool)
    if sqlite_path(url) is None:
        raise MigrationError(
            "only a SQLite database file given by its path can be migrated, not one in memory or given as a file: URI"
        )
    engine = create_async_engine(url, poolclass=NullPool)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]  # DB-API objects: untyped
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes SQLite's write lock at once: a second migrating process waits here.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and for in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(parsed.database)


def where(url: str) -> str:
    """The database, named for a log line (without its password)."""
    path = sqlite_path(url)
    return str(path) if path else make_url(url).render_as_string(hide_password=True)


async def current(url: str) -> str | None:
    """The database's revision; None when it is empty, missing, or from before migrations."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision)
    finally:
        await engine.dispose()


async def upgrade(url: str) -> Outcome:
    """Bring the database to the newest revision (see the module's docstring for the cases)."""
    head = head_revision()
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            if await connection.run_sync(_revision) == head:
                log.debug("database %s: schema up to date (revision %s)", where(url), head)
                return Outcome(head, head, "up to date")
        async with engine.connect() as connection:
            await connection.execution_options(**{_WRITE: True})
            async with connection.begin():
                outcome = await _upgrade_locked(connection, url, head)
    finally:
        await engine.dispose()
    log.info("database %s: %s", where(url), outcome.describe())
    return outcome


async def _upgrade_locked(connection: AsyncConnection, url: str, head: str) -> Outcome:
    """The work of `upgrade`, in one transaction that holds the migration lock; any error rolls it all back."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    before = await connection.run_sync(_revision)  # again: another process may have upgraded meanwhile
    if before == head:
        return Outcome(head, head, "up to date")
    tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    if before is not None and before not in await asyncio.to_thread(_known_revisions):
        raise MigrationError(
            f"the database is at schema revision {before}, which this hub does not know: a newer version of "
            "the hub upgraded it. Run that version, or go back to a copy of the database made before that "
            "upgrade (for SQLite, a hub.sqlite.bak-* file next to it)."
        )
    if before is None and "users" in tables:
        await connection.run_sync(_check_baseline, tables)
        action = "adopted"
    else:
        action = "created" if before is None else "upgraded"
    path = sqlite_path(url)
    backup = None
    if path is not None and action != "created":
        backup = await asyncio.to_thread(copy_sqlite, path, before or "unversioned")
        log.info("database %s: copied to %s before upgrading", path, backup)
    for script in await asyncio.to_thread(_steps, BASELINE if action == "adopted" else before, head):
        log.info("database %s: revision %s: %s", where(url), script.revision, script.doc)
    await connection.run_sync(_run_revisions, action == "adopted")
    if connection.dialect.name == "sqlite":
        await connection.run_sync(_check_foreign_keys)
    return Outcome(before, head, action, backup)


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise MigrationError(f"the database's alembic_version table names several revisions: {', '.join(rows)}")
    return rows[0] if rows else None


def _known_revisions() -> set[str]:
    return {script.revision for script in scripts().walk_revisions()}


def _steps(before: str | None, head: str) -> list[Script]:
    """The revisions that take the database from `before` to `head`, oldest first."""
    from alembic.script import Script

    steps = scripts().iterate_revisions(head, before or "base")
    return list(reversed([script for script in steps if isinstance(script, Script)]))


def _check_baseline(connection: Connection, tables: set[str]) -> None:
    """A database from before migrations must have the schema of 56aa053 before it is marked as such."""
    inspector = inspect(connection)
    missing = [f"table {table}" for table in BASELINE_COLUMNS if table not in tables]
    for table, columns in BASELINE_COLUMNS.items():
        if table in tables:
            found = {column["name"] for column in inspector.get_columns(table)}
            missing += [f"column {table}.{column}" for column in sorted(columns - found)]
    if missing:
        raise MigrationError(
            "the database has no schema revision and is not the schema of the hub of commit 56aa053, the last "
            f"one made without migrations: it lacks {', '.join(missing)}. Nothing was changed."
        )


def _run_revisions(connection: Connection, stamp_baseline: bool) -> None:
    from alembic import command

    config = alembic_config(connection)
    if stamp_baseline:
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise MigrationError(
            f"the upgrade would leave rows in {', '.join(tables)} that point at nothing; nothing was changed"
        )


def copy_sqlite(path: Path, revision: str) -> Path:
    """A consistent copy of a SQLite file (WAL included), made with SQLite's backup API, mode 0600."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 100):
        target = path.with_name(f"{path.name}.bak-{revision}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)
        break
    else:
        raise MigrationError(f"could not name a copy of {path}: too many copies made this second")
    source = sqlite3.connect(path, timeout=LOCK_WAIT_SECONDS)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    return target


async def run_command(action: str, url: str) -> int:
    """``hub db upgrade`` and ``hub db current``: print what was done or found."""
    try:
        if action == "upgrade":
            print((await upgrade(url)).describe())
            return 0
        found, head = await current(url), head_revision()
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        print(f"error: cannot reach the database {where(url)}: {exc}", file=sys.stderr)
        return 1
    if found == head:
        print(f"{found} (head)")
    elif found is None:
        print(f"none (an empty database, or one from before migrations; `hub db upgrade` brings it to {head})")
    else:
        print(f"{found} (this hub's schema is {head}; `hub db upgrade` brings it there)")
    return 0


def new_revision(message: str) -> Path:
    """Draft the next revision from what hub/models.py has and the newest revision lacks; return its file."""

    async def draft(url: str) -> Path:
        await upgrade(url)
        engine = migration_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_autogenerate, message)
        finally:
            await engine.dispose()

    with tempfile.TemporaryDirectory() as scratch:
        return asyncio.run(draft(f"sqlite+aiosqlite:///{scratch}/draft.sqlite"))


def _autogenerate(connection: Connection, message: str) -> Path:
    from alembic import command

    number = f"{int(head_revision()) + 1:04d}"
    script = command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=number)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


if __name__ == "__main__":  # python -m hub.migrate new "what changes"
    if len(sys.argv) != 3 or sys.argv[1] != "new":
        raise SystemExit('usage: python -m hub.migrate new "what the revision changes"')
    logging.basicConfig(level=logging.WARNING)
    print(new_revision(sys.argv[2]))
