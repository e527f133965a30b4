"""``hub backup DIR``: what a hub needs to come back, copied while it runs (``hub restore``: hub/restore.py).

What the data folder holds, and what of it is state:

- ``hub.sqlite`` (and ``-wal``, ``-shm``): every account, password hash, token hash, group, share and
  server record. State: copied with SQLite's online backup API, one consistent file, while the hub runs.
  A PostgreSQL database is dumped with ``pg_dump`` (the command is printed, the hub does not dump).
- ``cookie_secret`` (or ``hub.cookie_secret_file``): the key of everyone's session cookie. State: with
  it, people stay logged in across a restore; without it, everyone logs in again.
- ``auth_state_key`` (or ``auth.auth_state_key_file``; HUB_CRYPT_KEY wins over it): decrypts what login
  methods handed to servers. State: without it those values are lost until the next login.
- ``hub.sqlite.bak-*``: copies made before schema upgrades. Not needed: the backup is newer.
- ``accounts.changed``: a signal between the command line and the hub. Made again.
- Traefik's route files, with the hub's default certificate: written again from the database at start.
- Users' files: Docker volumes named in the database (``users.volume_name``, ``servers.volume_name``);
  listed in the manifest and in ``volumes.txt``, copied with ``--volumes`` (hub/volume_archive.py).
  With ``--volumes``, also the volumes this hub labelled that no account names any more (a removed
  account's kept files): listed in the manifest with ``"orphan": true``, and put back like the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shlex
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import hub
from hub import migrate
from hub.auth_state import KEY_ENV
from hub.config import Settings
from hub.volume_archive import (
    VOLUME_NAME,
    VolumeArchiver,
    VolumeError,
    archive_problem,
    backup_command,
    restore_command,
)

FORMAT = "containerhub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "hub.sqlite"
PG_DUMP = "hub.pgdump"
COOKIE_SECRET = "cookie_secret"
AUTH_STATE_KEY = "auth_state_key"
VOLUME_LIST = "volumes.txt"
VOLUME_DIR = "volumes"
VOLUMES_NOTE = (
    "Users' files are in these Docker volumes, not in the database. Without --volumes they are not in this "
    "folder: copy them with the commands in volumes.txt. A running server's files are copied as they are at "
    "that moment; stop servers first for a copy of everything at one instant."
)


class BackupError(Exception):
    """A backup or restore cannot be made; the message says why in plain words."""


@dataclass
class Volume:
    name: str
    owners: list[str] = field(default_factory=list)
    """Whose files: ``alice`` for an account's volume, ``alice/x`` for a named server's own volume."""
    labels: dict[str, str] | None = None
    archive: str | None = None
    orphan: bool = False
    """No account names it any more (its account was removed, its files kept); found by its hub labels."""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owners": self.owners,
            "labels": self.labels,
            "archive": self.archive,
            "orphan": self.orphan,
        }


def orphans(known: list[Volume], labelled: dict[str, dict[str, str]]) -> list[Volume]:
    """The hub's labelled volumes the database does not name, owned by the account named in their labels."""
    names = {volume.name for volume in known}
    found = []
    for name, labels in sorted(labelled.items()):
        if name in names or not VOLUME_NAME.match(name):
            continue
        user, server = labels.get("hub.username", ""), labels.get("hub.server", "")
        owner = f"{user}/{server}" if user and server else user
        found.append(Volume(name, [owner] if owner else [], labels, orphan=True))
    return found


# -- files -------------------------------------------------------------------------------------------


def prepare_folder(folder: Path) -> None:
    """A new or empty folder, mode 0700; refuse one with anything in it."""
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"{folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise BackupError(
            f"{folder} is not empty: a backup goes into a new or empty folder, so that it is never mixed with "
            "another one. Name a new folder."
        )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """A new file, mode 0600 (never replacing one)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included) as one file, mode 0600."""
    write_private(target, b"")
    origin = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=migrate.LOCK_WAIT_SECONDS)
    copy = sqlite3.connect(target)
    try:
        origin.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # self-contained: no -wal file beside it
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} cannot be copied: {exc}") from exc
    finally:
        copy.close()
        origin.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# -- PostgreSQL --------------------------------------------------------------------------------------


def _pg_options(url: str) -> list[str]:
    parsed = make_url(url)
    options = [f"--host={parsed.host or 'localhost'}", f"--port={parsed.port or 5432}"]
    if parsed.username:
        options.append(f"--username={parsed.username}")
    return [shlex.quote(option) for option in options]


def pg_dump_command(url: str, target: Path) -> str:
    """The ``pg_dump`` line for the hub's database (host, port, user and database; never the password)."""
    database = make_url(url).database or ""
    file = shlex.quote(f"--file={target / PG_DUMP}")
    return " ".join(["pg_dump --format=custom", *_pg_options(url), file, shlex.quote(database)])


def pg_restore_command(url: str, source: Path) -> str:
    """The ``pg_restore`` line that loads a dump into the (empty) database of ``url``."""
    database = shlex.quote(f"--dbname={make_url(url).database or ''}")
    return " ".join(["pg_restore --no-owner", *_pg_options(url), database, shlex.quote(str(source / PG_DUMP))])


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


# -- what the database says --------------------------------------------------------------------------

_VOLUMES_SQL = (
    "SELECT users.name, '', users.volume_name FROM users WHERE users.volume_name IS NOT NULL "
    "UNION ALL SELECT users.name, servers.name, servers.volume_name FROM servers "
    "JOIN users ON users.id = servers.user_id WHERE servers.volume_name IS NOT NULL"
)


async def volumes_in(url: str) -> list[Volume]:
    """The Docker volumes holding users' files, with whose they are, sorted by name."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(_VOLUMES_SQL))).all()
    finally:
        await engine.dispose()
    found: dict[str, Volume] = {}
    for user, server, name in rows:
        owner = f"{user}/{server}" if server else str(user)
        volume = found.setdefault(str(name), Volume(str(name)))
        if owner not in volume.owners:
            volume.owners.append(owner)
    return sorted(found.values(), key=lambda volume: volume.name)


# -- backup ------------------------------------------------------------------------------------------


def key_path(settings: Settings) -> Path:
    return settings.auth.auth_state_key_file or settings.hub.data_dir / "auth_state_key"


def helper_image(settings: Settings, chosen: str | None) -> str:
    image = settings.image(settings.default_image_name)
    return chosen or (image.image if image else settings.images[0].image)


def archiver(settings: Settings, image: str) -> VolumeArchiver:
    import docker

    spawner = settings.spawner
    client = docker.DockerClient(base_url=spawner.docker_url) if spawner.docker_url else docker.from_env()
    result = VolumeArchiver(client, image, spawner.prefix, spawner.extra_labels)
    result.check_image()
    return result


@dataclass
class Outcome:
    lines: list[str]
    problem: str | None = None
    """Set when the backup is incomplete (PostgreSQL): the command exits non-zero."""


async def backup(settings: Settings, target: Path, with_volumes: bool, image: str | None) -> Outcome:
    """Copy the database, the keys, and the list (or, ``with_volumes``, the contents) of users' volumes."""
    url, lines, problem = settings.db_url, [], None
    if target.resolve().is_relative_to(settings.hub.data_dir.resolve()):
        raise BackupError(
            f"{target} is inside the data folder {settings.hub.data_dir}, which a restore needs empty: "
            "keep backups elsewhere"
        )
    helper = helper_image(settings, image)
    docker_side = await asyncio.to_thread(archiver, settings, helper) if with_volumes else None
    prepare_folder(target)
    postgres = (
        "this hub's database is PostgreSQL, which `hub backup` does not copy. Dump it (the password comes from "
        f"PGPASSWORD or ~/.pgpass) into the backup folder:\n  {pg_dump_command(url, target)}"
    )
    if is_postgres(url):
        database: dict[str, Any] = {"kind": "postgresql", "dump": PG_DUMP, "file": None}
        problem = f"{postgres}\nEverything else is in {target}."
        source_url = url
    else:
        path = migrate.sqlite_path(url)
        if path is None or not path.exists():
            raise BackupError(f"there is no database to copy at {migrate.where(url)}")
        await asyncio.to_thread(copy_sqlite, path, target / DATABASE)
        database = {"kind": "sqlite", "file": DATABASE}
        source_url = sqlite_url(target / DATABASE)
        lines.append(f"database copied to {target / DATABASE}")
    try:
        revision = await migrate.current(source_url)
        volumes = await volumes_in(source_url)
    except (OSError, SQLAlchemyError, migrate.MigrationError) as exc:
        also = f"\nAnd {postgres}" if problem else ""
        raise BackupError(f"cannot read the database {migrate.where(url)}: {exc}{also}") from exc
    files: dict[str, str | None] = {}
    for key, source in ((COOKIE_SECRET, settings.hub.secret_path), (AUTH_STATE_KEY, key_path(settings))):
        files[key] = None
        if source.is_file():
            write_private(target / key, source.read_bytes())
            files[key] = key
            lines.append(f"{source} copied")
    if os.environ.get(KEY_ENV):
        lines.append(f"the auth_state keys come from {KEY_ENV}: keep its value with this backup (it is not copied)")
    if docker_side is not None:
        volumes += orphans(volumes, await asyncio.to_thread(docker_side.hub_volumes))
        await asyncio.to_thread(_archive_all, docker_side, target, volumes, lines)
    write_private(target / VOLUME_LIST, volume_list(volumes, helper, hub_labels(settings)).encode())
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hub_version": hub.__version__,
        "schema_revision": revision,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": database,
        "files": files,
        "auth_state_keys_from_environment": bool(os.environ.get(KEY_ENV)),
        "volumes": [volume.as_json() for volume in volumes],
        "volumes_note": VOLUMES_NOTE,
    }
    write_private(target / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    lines.append(f"{len(volumes)} users' volumes listed in {target / VOLUME_LIST}")
    return Outcome(lines, problem)


def _archive_all(docker_side: VolumeArchiver, target: Path, volumes: list[Volume], lines: list[str]) -> None:
    (target / VOLUME_DIR).mkdir(mode=0o700)
    for volume in volumes:
        volume.labels = docker_side.labels_of(volume.name) if VOLUME_NAME.match(volume.name) else None
        if volume.labels is None:
            lines.append(f"volume {volume.name} ({', '.join(volume.owners)}) does not exist in Docker: skipped")
            continue
        archive = target / VOLUME_DIR / f"{volume.name}.tar"
        descriptor = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            docker_side.archive(volume.name, file)
        volume.archive = f"{VOLUME_DIR}/{volume.name}.tar"
        whose = "no account names it any more" if volume.orphan else ", ".join(volume.owners)
        lines.append(f"volume {volume.name} ({whose}) copied to {archive}")
        problem = archive_problem(archive)
        if problem:
            lines.append(f"warning: `hub restore` will refuse the archive of volume {volume.name}: {problem}")


def hub_labels(settings: Settings) -> dict[str, str]:
    """Labels for a volume put back whose own labels were not recorded (a backup made without --volumes)."""
    return {**settings.spawner.extra_labels, "hub.managed": "true", "hub.prefix": settings.spawner.prefix}


def orphan_note(volume: Volume) -> str:
    return " (no account names it any more: kept after its account was removed)" if volume.orphan else ""


def volume_list(volumes: list[Volume], image: str, fallback_labels: dict[str, str]) -> str:
    """volumes.txt: a ready-to-run line per volume to copy it, and the lines to put it back."""
    valid = [volume for volume in volumes if VOLUME_NAME.match(volume.name)]
    out = [
        "# Docker volumes with users' files (whose, from the database of this backup):",
        *(f"#   {volume.name}: {', '.join(volume.owners)}{orphan_note(volume)}" for volume in valid),
        *([] if valid else ["#   (none: no account has started a server yet)"]),
        "# Volumes of removed accounts (kept files no account names) are found only by `hub backup --volumes`.",
        "# To copy them into this folder, run these lines here (cd into this folder first); the helper image",
        "# needs tar. `hub backup --volumes` does the same by itself.",
        "mkdir -p volumes",
        *(backup_command(volume.name, image) for volume in valid),
        "",
        "# To put one back into a new volume, run its line from this folder (`hub restore --volumes` does it too):",
        *(f"# {restore_command(volume.name, image, volume.labels or fallback_labels)}" for volume in valid),
    ]
    return "\n".join(out) + "\n"


# -- the command line --------------------------------------------------------------------------------


async def run_backup(settings: Settings, target: Path, with_volumes: bool, image: str | None) -> int:
    try:
        outcome = await backup(settings, target, with_volumes, image)
    except (BackupError, VolumeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(outcome.lines))
    if outcome.problem:
        print(f"error: the backup is not complete: {outcome.problem}", file=sys.stderr)
        return 1
    print(f"backup complete in {target}")
    return 0
