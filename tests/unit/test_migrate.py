"""Schema migrations: new databases, databases made before migrations (by the code of 56aa053), re-runs, two
upgrades at once, the SQLite copy, and PostgreSQL. Rows are compared as stored, column by column."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from hub import migrate
from hub.models import Base

ROOT = Path(__file__).resolve().parents[2]
OLD_COMMIT = "56aa053"
OLD_DATA = r"""
import asyncio, datetime as dt, sys
from hub.db import open_database
from hub.models import ApiToken, Server, ServerState, User

async def main(url):
    engine, sessions = await open_database(url)  # 56aa053: create_all, no migrations
    async with sessions.begin() as session:
        alice = User(name="alice", admin=True, password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                     last_activity=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc))
        bob = User(name="bob", sessions_valid_after=1767312000.25)
        session.add_all([alice, bob])
        await session.flush()
        session.add(Server(user_id=alice.id, image_name="jupyterlab", container_id="c0ffee" * 10,
                           container_name="hub-user-alice", volume_name="hub-vol-alice", url="http://172.19.0.2:8888",
                           state=ServerState.RUNNING, route_secret="s" * 64, error="ünïcode ✓ and 'quotes'"))
        session.add(ApiToken(user_id=alice.id, hashed="ab" * 32, prefix="abcd1234", note="for the culler"))
        session.add(ApiToken(user_id=bob.id, hashed="cd" * 32, prefix="cdef5678", note="",
                             expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)))
    await engine.dispose()

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(scope="session")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub package as commit 56aa053 had it, the last version without migrations."""
    folder = tmp_path_factory.mktemp("hub-56aa053")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "hub"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def make_old_database(old_source: Path, url: str) -> None:
    """A database made and filled by the code of 56aa053, in its own process."""
    made = subprocess.run(
        [sys.executable, "-c", OLD_DATA, url],
        cwd=old_source,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(old_source)},
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


async def stored_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables of 56aa053, in the columns 56aa053 had, as the database returns them."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return {
                table: [
                    tuple(row)
                    for row in await connection.execute(
                        text(f"SELECT {', '.join(sorted(columns))} FROM {table} ORDER BY id")
                    )
                ]
                for table, columns in migrate.BASELINE_COLUMNS.items()
            }
    finally:
        await engine.dispose()


async def on_connection(url: str, work, begin: bool = False):  # type: ignore[no-untyped-def]
    engine = migrate.migration_engine(url)
    try:
        async with engine.begin() if begin else engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def differences_from_models(connection: Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def sqlite_schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'alembic_version%' ORDER BY name"
        ).fetchall()
    connection.close()
    return rows


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def copies_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


async def test_a_new_database_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hub.sqlite"
    outcome = await migrate.upgrade(sqlite_url(path))
    assert (outcome.before, outcome.after, outcome.action, outcome.backup) == (
        None,
        migrate.head_revision(),
        "created",
        None,
    )
    assert await migrate.current(sqlite_url(path)) == migrate.head_revision()
    assert await on_connection(sqlite_url(path), differences_from_models) == []
    assert copies_of(path) == []


async def test_revision_0001_is_exactly_the_schema_that_56aa053_made(tmp_path: Path, old_source: Path) -> None:
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    make_old_database(old_source, sqlite_url(old))
    await on_connection(sqlite_url(new), lambda c: command.upgrade(migrate.alembic_config(c), "0001"), begin=True)
    assert sqlite_schema(new) == sqlite_schema(old)


async def test_a_database_from_before_migrations_keeps_every_row(tmp_path: Path, old_source: Path) -> None:
    path = tmp_path / "hub.sqlite"
    make_old_database(old_source, sqlite_url(path))
    before = await stored_rows(sqlite_url(path))
    assert await migrate.current(sqlite_url(path)) is None

    outcome = await migrate.upgrade(sqlite_url(path))

    assert (outcome.before, outcome.after, outcome.action) == (None, migrate.head_revision(), "adopted")
    assert await stored_rows(sqlite_url(path)) == before
    assert len(before["users"]) == 2 and len(before["servers"]) == 1 and len(before["api_tokens"]) == 2
    assert await migrate.current(sqlite_url(path)) == migrate.head_revision()
    assert await on_connection(sqlite_url(path), differences_from_models) == []
    with sqlite3.connect(path) as connection:
        # alice's files stay in her volume of the old scheme; bob never started a server
        assert connection.execute("SELECT name, volume_name FROM users ORDER BY name").fetchall() == [
            ("alice", "hub-vol-alice"),
            ("bob", None),
        ]
        assert connection.execute("SELECT error_log FROM servers").fetchall() == [(None,)]
        assert connection.execute("SELECT count(*) FROM hub_state").fetchone() == (0,)
    connection.close()


async def test_a_copy_readable_only_by_its_owner_is_made_before_an_upgrade(tmp_path: Path, old_source: Path) -> None:
    path = tmp_path / "hub.sqlite"
    make_old_database(old_source, sqlite_url(path))
    before = await stored_rows(sqlite_url(path))
    old_schema = sqlite_schema(path)

    outcome = await migrate.upgrade(sqlite_url(path))

    assert copies_of(path) == [outcome.backup]
    assert outcome.backup is not None and outcome.backup.name.startswith("hub.sqlite.bak-unversioned-")
    assert outcome.backup.stat().st_mode & 0o777 == 0o600
    assert await stored_rows(sqlite_url(outcome.backup)) == before  # WAL contents included
    assert sqlite_schema(outcome.backup) == old_schema
    assert await migrate.current(sqlite_url(outcome.backup)) is None
    assert str(outcome.backup) in outcome.describe()

    # an older revision gets a copy named after it
    await on_connection(sqlite_url(path), lambda c: command.downgrade(migrate.alembic_config(c), "0001"), begin=True)
    again = await migrate.upgrade(sqlite_url(path))
    assert again.action == "upgraded" and again.before == "0001"
    assert again.backup is not None and again.backup.name.startswith("hub.sqlite.bak-0001-")
    assert await stored_rows(sqlite_url(path)) == before


async def test_an_up_to_date_database_is_left_alone_even_while_the_hub_writes(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    await migrate.upgrade(sqlite_url(path))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    writer.execute("INSERT INTO hub_state (key, value) VALUES ('generation', '1')")
    try:
        outcome = await asyncio.wait_for(migrate.upgrade(sqlite_url(path)), 10)
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert outcome.action == "up to date" and outcome.backup is None
    assert copies_of(path) == []


def test_the_newest_revision_is_read_as_alembic_reads_it() -> None:
    assert migrate.head_revision() == migrate.scripts().get_current_head()


async def test_a_start_on_an_up_to_date_database_does_not_load_alembic(tmp_path: Path) -> None:
    """Alembic costs about 10 MB and 0.2 s; only a database that needs a revision pays for it."""
    url = sqlite_url(tmp_path / "hub.sqlite")
    script = (
        "import asyncio, sys; from hub.db import open_database\n"
        "async def main():\n"
        "    engine, _ = await open_database(sys.argv[1])\n"
        "    await engine.dispose()\n"
        "asyncio.run(main()); print('alembic' in sys.modules)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, capture_output=True, text=True, timeout=60)
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    assert [run.stdout.strip() for run in runs] == ["True", "False"]  # created, then found up to date


async def test_two_processes_upgrading_at_once_upgrade_once(tmp_path: Path, old_source: Path) -> None:
    path = tmp_path / "hub.sqlite"
    make_old_database(old_source, sqlite_url(path))
    before = await stored_rows(sqlite_url(path))
    script = "import asyncio, sys; from hub.migrate import upgrade; print(asyncio.run(upgrade(sys.argv[1])).action)"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, sqlite_url(path)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [err for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["adopted", "up to date", "up to date"]
    assert len(copies_of(path)) == 1
    assert await stored_rows(sqlite_url(path)) == before
    assert await migrate.current(sqlite_url(path)) == migrate.head_revision()


async def test_rebuilding_a_table_keeps_the_rows_that_point_at_it(tmp_path: Path, old_source: Path) -> None:
    """Batch mode rebuilds ``users`` (copy, drop, rename); with foreign keys on, the drop would delete every
    server and token by cascade. Dropping a column (the way down from 0002) is such a rebuild."""
    path = tmp_path / "hub.sqlite"
    make_old_database(old_source, sqlite_url(path))
    await migrate.upgrade(sqlite_url(path))
    before = await stored_rows(sqlite_url(path))
    await on_connection(sqlite_url(path), lambda c: command.downgrade(migrate.alembic_config(c), "0001"), begin=True)
    assert await stored_rows(sqlite_url(path)) == before
    assert (await migrate.upgrade(sqlite_url(path))).action == "upgraded"
    assert await stored_rows(sqlite_url(path)) == before


async def test_a_database_from_a_newer_hub_is_refused_in_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    await migrate.upgrade(sqlite_url(path))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    connection.close()
    with pytest.raises(migrate.MigrationError, match="revision 0099, which this hub does not know"):
        await migrate.upgrade(sqlite_url(path))
    assert await migrate.current(sqlite_url(path)) == "0099"
    assert copies_of(path) == []


async def test_an_unversioned_database_unlike_56aa053_is_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as connection:  # users as the first hub made them, before sessions_valid_after
        connection.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64), admin BOOLEAN, "
            "created DATETIME, last_activity DATETIME, password_hash VARCHAR(255))"
        )
        connection.execute("INSERT INTO users (name, admin) VALUES ('alice', 1)")
    connection.close()
    schema = sqlite_schema(path)
    with pytest.raises(migrate.MigrationError, match="column users.sessions_valid_after") as raised:
        await migrate.upgrade(sqlite_url(path))
    assert "lacks table servers, table api_tokens" in str(raised.value)
    assert sqlite_schema(path) == schema and await migrate.current(sqlite_url(path)) is None
    assert copies_of(path) == []


def test_hub_db_upgrade_and_current_on_the_command_line(tmp_path: Path, old_source: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"hub": {"data_dir": str(tmp_path / "data")}, "images": [{"name": "lab", "image": "x:1"}]})
    )

    def hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub", "--config", str(config), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    head = migrate.head_revision()
    assert hub_cli("db", "current").stdout.startswith("none (")
    assert not (tmp_path / "data").exists()  # looking creates nothing
    (tmp_path / "data").mkdir()
    make_old_database(old_source, sqlite_url(tmp_path / "data" / "hub.sqlite"))
    assert hub_cli("db", "current").stdout.startswith("none (")
    upgraded = hub_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"marked it as revision 0001 and upgraded it to revision {head}" in upgraded.stdout
    assert "hub.sqlite.bak-unversioned-" in upgraded.stdout
    assert hub_cli("db", "current").stdout == f"{head} (head)\n"
    assert hub_cli("db", "upgrade").stdout == f"the database schema is up to date (revision {head})\n"
    listed = hub_cli("user", "list")
    assert listed.returncode == 0 and "alice" in listed.stdout and "bob" in listed.stdout, listed.stderr


@pytest.fixture
async def pg_url(postgres_url: str, run_prefix: str) -> AsyncIterator[str]:
    """A database of its own on the run's PostgreSQL server (other tests use the default one)."""
    name = f"{run_prefix}_migrate_{secrets.token_hex(3)}"
    server = create_async_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    async with server.connect() as connection:
        await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await server.dispose()


async def test_postgresql_database_from_before_migrations_is_upgraded(pg_url: str, old_source: Path) -> None:
    make_old_database(old_source, pg_url)
    before = await stored_rows(pg_url)
    assert await migrate.current(pg_url) is None
    outcome = await migrate.upgrade(pg_url)
    assert (outcome.action, outcome.after, outcome.backup) == ("adopted", migrate.head_revision(), None)
    assert await stored_rows(pg_url) == before
    assert await on_connection(pg_url, differences_from_models) == []
    assert (await migrate.upgrade(pg_url)).action == "up to date"
    assert await migrate.current(pg_url) == migrate.head_revision()


async def test_postgresql_two_upgrades_at_once_create_the_schema_once(pg_url: str) -> None:
    outcomes = await asyncio.gather(migrate.upgrade(pg_url), migrate.upgrade(pg_url), migrate.upgrade(pg_url))
    assert sorted(outcome.action for outcome in outcomes) == ["created", "up to date", "up to date"]
    assert await on_connection(pg_url, differences_from_models) == []
