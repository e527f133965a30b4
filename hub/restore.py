"""``hub restore DIR``: a backup made by ``hub backup`` (hub/backup.py) back into an empty data folder.

Everything is checked before anything is written: the manifest's format, the files it names, a
schema revision this hub can run (an older one is upgraded, as at every start; a newer one is
refused), an empty data folder, and with ``--volumes`` each archive and each volume already there.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hub import migrate
from hub.auth_state import KEY_ENV
from hub.backup import (
    AUTH_STATE_KEY,
    COOKIE_SECRET,
    DATABASE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    VOLUME_DIR,
    BackupError,
    archiver,
    copy_sqlite,
    helper_image,
    hub_labels,
    is_postgres,
    key_path,
    pg_restore_command,
    sqlite_url,
    write_private,
)
from hub.config import Settings
from hub.docker_policy import MANAGED_LABEL
from hub.volume_archive import VOLUME_NAME, VolumeArchiver, VolumeError, archive_problem


def check_revision(revision: str | None, made_by: str = "a newer version") -> None:
    """A schema this hub can run (after migrating): not one from a newer hub."""
    head = migrate.head_revision()
    if revision is None or revision == head:
        return
    if revision.isdigit() and head.isdigit() and int(revision) > int(head):
        raise BackupError(
            f"the backup's database has schema revision {revision}, made by a newer hub ({made_by}); this hub "
            f"knows revisions up to {head}. Restore it with that version of the hub or a later one."
        )
    if revision not in {script.revision for script in migrate.scripts().walk_revisions()}:
        raise BackupError(f"the backup's database has schema revision {revision}, which this hub does not know")


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, checked: a known format, and the files it names are there."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: it is not a folder made by `hub backup`") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is not the manifest of a hub backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{source / MANIFEST} has format version {manifest.get('format_version')!r}; this hub reads "
            f"version {FORMAT_VERSION}: restore with the hub that made it"
        )
    database, files, volumes = manifest.get("database"), manifest.get("files"), manifest.get("volumes")
    if not isinstance(database, dict) or database.get("kind") not in ("sqlite", "postgresql"):
        raise BackupError(f"{source / MANIFEST}: `database` must say whether it is sqlite or postgresql")
    if not isinstance(files, dict) or not isinstance(volumes, list):
        raise BackupError(f"{source / MANIFEST}: `files` and `volumes` are missing")
    named = [database.get("file")] + [files.get(COOKIE_SECRET), files.get(AUTH_STATE_KEY)]
    for volume in volumes:
        if not isinstance(volume, dict) or not VOLUME_NAME.match(str(volume.get("name"))):
            raise BackupError(f"{source / MANIFEST}: a volume entry has no valid name: {str(volume)[:100]}")
        labels = volume.get("labels")
        if labels is not None and not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
            raise BackupError(f"{source / MANIFEST}: the labels of volume {volume['name']} are not names and values")
        if volume.get("archive") is not None and volume["archive"] != f"{VOLUME_DIR}/{volume['name']}.tar":
            raise BackupError(f"{source / MANIFEST}: the archive of volume {volume['name']} is not where it belongs")
    for name in named:
        if name is not None and (
            name not in (DATABASE, COOKIE_SECRET, AUTH_STATE_KEY) or not (source / name).is_file()
        ):
            raise BackupError(f"{source} lacks {name}, which its manifest names")
    return manifest


def not_empty(data_dir: Path, held: str) -> str:
    """What to do when the data folder holds something: also after a restore that stopped halfway."""
    moved = shlex.quote(f"{data_dir}.old")
    return (
        f"the data folder {data_dir} is not empty (it holds {held}): a restore writes only into an empty data "
        "folder, so that it never overwrites or mixes with a hub's data.\n"
        "- If a hub uses this folder, stop that hub first.\n"
        "- If an earlier `hub restore` stopped halfway, these are the files it had written: they are not a "
        "working hub.\n"
        f"Either way, move the folder away (for example `mv {shlex.quote(str(data_dir))} {moved}`) or point "
        "hub.data_dir at a new folder, then run the same `hub restore` again.\n"
        "--force does not change this: it only lets --volumes unpack into volumes that already hold files (add it "
        "when running again after a restore that stopped halfway: the volumes it had put back exist by then)."
    )


def _in_the_way(settings: Settings, manifest: dict[str, Any]) -> None:
    """Restore writes only into an empty data folder, and replaces no key file kept elsewhere."""
    data_dir = settings.hub.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        held = ", ".join(sorted(path.name for path in data_dir.iterdir())[:5]) if data_dir.is_dir() else "a file"
        raise BackupError(not_empty(data_dir, held))
    files = manifest["files"]
    wanted = [settings.hub.secret_path] if files.get(COOKIE_SECRET) else []
    wanted += [key_path(settings)] if files.get(AUTH_STATE_KEY) else []
    path = migrate.sqlite_path(settings.db_url)
    if path is not None:
        wanted.append(path)
    for path in wanted:
        if path.exists():
            raise BackupError(f"{path} exists already: a restore replaces no file; move it away first")


async def restore(settings: Settings, source: Path, with_volumes: bool, force: bool, image: str | None) -> list[str]:
    """Put the database, keys and (``with_volumes``) users' volumes back; checks everything before writing."""
    manifest, url, lines = read_manifest(source), settings.db_url, []
    kind = manifest["database"]["kind"]
    if kind != ("postgresql" if is_postgres(url) else "sqlite"):
        raise BackupError(
            f"the backup holds a {kind} database, but this hub's database_url is {migrate.where(url)}: a restore "
            "does not move a hub between SQLite and PostgreSQL"
        )
    _in_the_way(settings, manifest)
    if kind == "sqlite":
        try:
            found = await migrate.current(sqlite_url(source / DATABASE))
        except (OSError, SQLAlchemyError) as exc:
            raise BackupError(f"{source / DATABASE} is not a database this hub can read: {exc}") from exc
        if found != manifest.get("schema_revision"):
            raise BackupError(
                f"{source / DATABASE} has schema revision {found}, but the manifest says "
                f"{manifest.get('schema_revision')}: the folder was changed after the backup"
            )
    check_revision(manifest.get("schema_revision"), f"version {manifest.get('hub_version')}")
    volumes = [volume for volume in manifest["volumes"] if volume.get("archive")]
    docker_side = None
    if with_volumes:
        docker_side = await asyncio.to_thread(
            check_volumes, settings, helper_image(settings, image), source, volumes, force
        )
    settings.hub.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        settings.hub.data_dir.chmod(0o700)
    except OSError:  # a folder the hub's user does not own (a mounted volume): left as it is
        pass
    if kind == "sqlite":
        path = migrate.sqlite_path(url)
        assert path is not None
        await asyncio.to_thread(copy_sqlite, source / DATABASE, path)
        lines.append(f"database put back at {path}; {(await migrate.upgrade(url)).describe()}")
    else:
        lines.append(
            f"before you start the hub, load the dump into an empty database:\n  {pg_restore_command(url, source)}"
        )
    for key, target in ((COOKIE_SECRET, settings.hub.secret_path), (AUTH_STATE_KEY, key_path(settings))):
        if manifest["files"].get(key):
            write_private(target, (source / key).read_bytes())
            lines.append(f"{target} put back")
    if manifest.get("auth_state_keys_from_environment"):
        lines.append(f"the backed-up hub took its auth_state keys from {KEY_ENV}: set the same value here")
    if docker_side is not None:
        for volume in volumes:
            labels = {**(volume.get("labels") or hub_labels(settings)), MANAGED_LABEL: "true"}  # the hub's own
            await asyncio.to_thread(docker_side.restore, volume["name"], source / volume["archive"], labels)
            whose = " (no account names it: a removed account's kept files)" if volume.get("orphan") else ""
            lines.append(f"volume {volume['name']} put back{whose}")
    elif volumes:
        lines.append(f"{len(volumes)} volumes were not touched (add --volumes to put them back)")
    if with_volumes and not volumes and manifest["volumes"]:
        lines.append("this backup holds no volumes (it was made without --volumes): see its volumes.txt")
    return lines


def check_volumes(
    settings: Settings, image: str, source: Path, volumes: list[dict[str, Any]], force: bool
) -> VolumeArchiver:
    docker_side = archiver(settings, image)
    for volume in volumes:
        name, archive = volume["name"], source / volume["archive"]
        problem = archive_problem(archive) if archive.is_file() else "it is missing"
        if problem:
            raise BackupError(f"the archive of volume {name}, {archive}, cannot be put back: {problem}")
        found = docker_side.labels_of(name)
        if found is not None and found.get(MANAGED_LABEL) != "true":
            raise BackupError(
                f"the volume {name} exists, but this hub did not make it (it lacks the label {MANAGED_LABEL}=true): "
                "a restore does not write into it, not even with --force. Remove or rename it, then run again."
            )
        if not force and found is not None and not docker_side.is_empty(name):
            raise BackupError(
                f"the volume {name} exists and holds files: a restore does not overwrite them. Remove the volume, "
                "or add --force to unpack the backup over it (files not in the backup stay; after a restore that "
                "stopped halfway, --force is what finishes it)."
            )
    return docker_side


async def run_restore(settings: Settings, source: Path, with_volumes: bool, force: bool, image: str | None) -> int:
    try:
        lines = await restore(settings, source, with_volumes, force, image)
    except (BackupError, VolumeError, migrate.MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print("restore complete: start the hub")
    return 0
