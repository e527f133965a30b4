"""With PostgreSQL, the pg_dump and pg_restore lines that hub backup and hub restore print do the job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.backup import run_backup
from hub.config import Settings
from hub.db import open_database
from hub.models import User
from hub.restore import run_restore


async def new_database(url: str, name: str) -> str:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def printed_line(output: str, command: str) -> str:
    (line,) = [line.strip() for line in output.splitlines() if line.strip().startswith(command)]
    return line


async def test_the_printed_pg_dump_and_pg_restore_lines_bring_the_accounts_back(
    postgres_url: str, run_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = await new_database(postgres_url, f"{run_prefix}_bk_from")
    target = await new_database(postgres_url, f"{run_prefix}_bk_to")
    images = [{"name": "lab", "image": "lab:1"}]
    before = Settings(hub={"data_dir": tmp_path / "data"}, images=images, database_url=source)  # type: ignore[arg-type]
    engine, sessions = await open_database(source)
    async with sessions.begin() as session:
        session.add(User(name="alice", password_hash="hash-of-alice", volume_name="hub-data-alice-0a1b"))
    await engine.dispose()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cookie_secret").write_bytes(b"cookie key")

    assert await run_backup(before, tmp_path / "backup", False, None) == 1  # not complete until pg_dump ran
    said = capsys.readouterr()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["database"]["kind"] == "postgresql" and manifest["volumes"][0]["owners"] == ["alice"]
    dump = subprocess.run(printed_line(said.err, "pg_dump"), shell=True, capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr

    after = Settings(hub={"data_dir": tmp_path / "new"}, images=images, database_url=target)  # type: ignore[arg-type]
    assert await run_restore(after, tmp_path / "backup", False, False, None) == 0
    said = capsys.readouterr()
    loaded = subprocess.run(
        printed_line(said.out, "pg_restore"), shell=True, capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert (tmp_path / "new" / "cookie_secret").read_bytes() == b"cookie key"
    engine, sessions = await open_database(target)
    async with sessions() as session:
        assert (await session.execute(select(User.name, User.password_hash))).all() == [("alice", "hash-of-alice")]
    await engine.dispose()
