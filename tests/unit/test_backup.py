"""hub/backup.py without Docker: what a backup holds, and what a restore refuses."""

from __future__ import annotations

import io
import json
import shlex
import sqlite3
import stat
import tarfile
from pathlib import Path

import pytest

from hub import migrate
from hub.backup import BackupError, Volume, backup, orphans, pg_dump_command, run_backup, volume_list
from hub.config import Settings
from hub.db import open_database
from hub.models import Server, User
from hub.restore import read_manifest, restore
from hub.volume_archive import VolumeArchiver, VolumeError, archive_problem, backup_command, restore_command


def settings_for(data_dir: Path, **more: object) -> Settings:
    return Settings(hub={"data_dir": data_dir}, images=[{"name": "lab", "image": "lab:1"}], **more)  # type: ignore[arg-type]


async def a_hub(data_dir: Path) -> Settings:
    """A hub's data folder: alice with a volume and a named server with its own, the cookie and auth_state keys."""
    settings = settings_for(data_dir)
    engine, sessions = await open_database(settings.db_url)
    async with sessions.begin() as session:
        alice = User(name="alice", password_hash="hash-of-alice", volume_name="hub-data-alice-0a1b")
        alice.servers.append(Server(name="x", image_name="lab", route_secret="", volume_name="hub-data-alice--x-9f"))
        session.add(alice)
    await engine.dispose()
    (data_dir / "cookie_secret").write_bytes(b"cookie key")
    (data_dir / "auth_state_key").write_bytes(b"fernet key")
    return settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_backup_comes_back_into_an_empty_data_folder(tmp_path: Path) -> None:
    settings = await a_hub(tmp_path / "data")
    outcome = await backup(settings, tmp_path / "backup", with_volumes=False, image=None)
    assert outcome.problem is None
    kept = tmp_path / "backup"
    assert mode(kept) == 0o700 and {mode(path) for path in kept.iterdir()} == {0o600}
    manifest = json.loads((kept / "manifest.json").read_text())
    assert manifest["schema_revision"] == migrate.head_revision()
    assert manifest["volumes"] == [
        {"name": "hub-data-alice--x-9f", "owners": ["alice/x"], "labels": None, "archive": None, "orphan": False},
        {"name": "hub-data-alice-0a1b", "owners": ["alice"], "labels": None, "archive": None, "orphan": False},
    ]
    lines = [line for line in (kept / "volumes.txt").read_text().splitlines() if line.startswith("docker run")]
    assert [shlex.split(line)[8] for line in lines] == [
        "hub-data-alice--x-9f:/volume:ro",
        "hub-data-alice-0a1b:/volume:ro",
    ]

    again = settings_for(tmp_path / "new")
    said = await restore(again, kept, with_volumes=False, force=False, image=None)
    assert any(line.startswith("database put back at") for line in said)
    assert not any("volumes were not touched" in line for line in said)  # none was archived
    assert mode(tmp_path / "new") == 0o700
    assert {path.name: mode(path) for path in (tmp_path / "new").iterdir()} == {
        "hub.sqlite": 0o600,
        "cookie_secret": 0o600,
        "auth_state_key": 0o600,
    }
    assert (tmp_path / "new" / "cookie_secret").read_bytes() == b"cookie key"
    with sqlite3.connect(tmp_path / "new" / "hub.sqlite") as db:
        assert db.execute("SELECT name, password_hash FROM users").fetchall() == [("alice", "hash-of-alice")]


async def test_a_backup_goes_only_into_a_new_or_empty_folder(tmp_path: Path) -> None:
    settings = await a_hub(tmp_path / "data")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "last-week.txt").write_text("older backup")
    with pytest.raises(BackupError, match="backup is not empty"):
        await backup(settings, tmp_path / "backup", with_volumes=False, image=None)
    assert [path.name for path in (tmp_path / "backup").iterdir()] == ["last-week.txt"]
    with pytest.raises(BackupError, match="is inside the data folder"):
        await backup(settings, tmp_path / "data" / "backups", with_volumes=False, image=None)


async def test_a_restore_refuses_a_data_folder_in_use(tmp_path: Path) -> None:
    await backup(await a_hub(tmp_path / "data"), tmp_path / "backup", with_volumes=False, image=None)
    with pytest.raises(BackupError, match=f"the data folder {tmp_path / 'data'} is not empty .it holds auth_state_key"):
        await restore(settings_for(tmp_path / "data"), tmp_path / "backup", with_volumes=False, force=False, image=None)


async def test_a_restore_that_stopped_halfway_says_how_to_run_it_again(tmp_path: Path) -> None:
    """The data folder a failed restore left is refused with what to do; after moving it, the same command works."""
    await backup(await a_hub(tmp_path / "data"), tmp_path / "backup", with_volumes=False, image=None)
    new = settings_for(tmp_path / "new")
    await restore(new, tmp_path / "backup", with_volumes=False, force=False, image=None)
    (tmp_path / "new" / "auth_state_key").unlink()  # as if it had stopped before writing this
    with pytest.raises(BackupError) as refused:
        await restore(new, tmp_path / "backup", with_volumes=False, force=True, image=None)
    said = str(refused.value)
    assert f"the data folder {tmp_path / 'new'} is not empty (it holds cookie_secret, hub.sqlite)" in said
    assert "If an earlier `hub restore` stopped halfway" in said
    assert f"mv {tmp_path / 'new'} {tmp_path / 'new'}.old" in said
    assert "--force does not change this: it only lets --volumes unpack into volumes that already hold files" in said
    (tmp_path / "new").rename(tmp_path / "new.old")
    again = await restore(new, tmp_path / "backup", with_volumes=False, force=False, image=None)
    assert any(line.startswith("database put back at") for line in again)


def test_orphan_volumes_are_the_hubs_labelled_volumes_no_account_names() -> None:
    known = [Volume("hub-data-alice-0a1b", ["alice"])]
    labelled = {
        "hub-data-alice-0a1b": {"hub.username": "alice"},
        "hub-data-bob-77": {"hub.username": "bob", "hub.server": ""},
        "hub-data-bob--x-1": {"hub.username": "bob", "hub.server": "x"},
    }
    found = orphans(known, labelled)
    assert [(volume.name, volume.owners, volume.orphan) for volume in found] == [
        ("hub-data-bob--x-1", ["bob/x"], True),
        ("hub-data-bob-77", ["bob"], True),
    ]
    assert found[1].labels == {"hub.username": "bob", "hub.server": ""}  # put back with them
    assert "hub-data-bob-77: bob (no account names it any more" in volume_list(found, "lab:1", {})


async def test_a_backup_from_a_newer_hub_is_refused(tmp_path: Path) -> None:
    await backup(await a_hub(tmp_path / "data"), tmp_path / "backup", with_volumes=False, image=None)
    newer = f"{int(migrate.head_revision()) + 1:04d}"
    with sqlite3.connect(tmp_path / "backup" / "hub.sqlite") as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (newer,))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps({**manifest, "schema_revision": newer}))
    with pytest.raises(BackupError, match=f"schema revision {newer}, made by a newer hub"):
        await restore(settings_for(tmp_path / "new"), tmp_path / "backup", with_volumes=False, force=False, image=None)
    assert not (tmp_path / "new").exists()  # nothing written


async def test_a_changed_backup_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="holds no manifest.json: it is not a folder made by `hub backup`"):
        read_manifest(tmp_path)
    await backup(await a_hub(tmp_path / "data"), tmp_path / "backup", with_volumes=False, image=None)
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    manifest["volumes"][0]["archive"] = "../../etc/passwd"
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="is not where it belongs"):
        read_manifest(tmp_path / "backup")
    manifest["volumes"][0]["archive"] = None
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "backup" / "hub.sqlite").write_bytes(b"not a database")
    with pytest.raises(BackupError, match="hub.sqlite is not a database this hub can read"):
        await restore(settings_for(tmp_path / "new"), tmp_path / "backup", with_volumes=False, force=False, image=None)
    assert not (tmp_path / "new").exists()


async def test_postgresql_is_dumped_with_the_printed_pg_dump_command_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://hubuser:s3cret-word@127.0.0.1:9/hubdb"
    assert pg_dump_command(url, Path("/backups/monday")) == (
        "pg_dump --format=custom --host=127.0.0.1 --port=9 --username=hubuser --file=/backups/monday/hub.pgdump hubdb"
    )
    settings = settings_for(tmp_path / "data", database_url=url)
    assert await run_backup(settings, tmp_path / "backup", False, None) == 1  # nothing answers on port 9
    said = capsys.readouterr()
    assert "PostgreSQL, which `hub backup` does not copy" in said.err
    assert f"pg_dump --format=custom --host=127.0.0.1 --port=9 --username=hubuser --file={tmp_path}" in said.err
    assert "s3cret" not in said.err + said.out


def test_volume_command_lines_are_shell_safe() -> None:
    line = backup_command("hub-data-alice-0a1b", "lab image:1; rm -rf /")
    assert shlex.split(line)[-6:] == [
        "lab image:1; rm -rf /",
        "-C",
        "/",
        "-cf",
        "/backup/hub-data-alice-0a1b.tar",
        "volume",
    ]
    back = restore_command("hub-data-alice-0a1b", "lab:1", {"hub.username": "o'brien"})
    assert "--label 'hub.username=o'\"'\"'brien'" in back
    with pytest.raises(VolumeError, match="is not a Docker volume name"):
        backup_command("../etc", "lab:1")


def test_an_archive_with_files_outside_the_volume_is_refused(tmp_path: Path) -> None:
    def archive(*names: str) -> Path:
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.tar"
        with tarfile.open(path, "w") as tar:
            for name in names:
                tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
        return path

    assert archive_problem(archive("volume/notes.txt", "./volume/a/b")) is None
    assert "../etc/passwd" in str(archive_problem(archive("volume/../etc/passwd")))
    assert "not inside volume/" in str(archive_problem(archive("etc/cron.d/x")))
    assert "not a readable tar file" in str(archive_problem(tmp_path / "missing.tar"))


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([member("volume/disk", tarfile.BLKTYPE)], "the device file 'volume/disk'"),
        ([member("volume/tty", tarfile.CHRTYPE)], "the device file 'volume/tty'"),
        ([member("volume/pipe", tarfile.FIFOTYPE)], "the FIFO (named pipe) 'volume/pipe'"),
        ([member("volume/shadow", tarfile.LNKTYPE, "etc/shadow")], "'etc/shadow', which is not inside volume/"),
        ([member("volume/x", tarfile.LNKTYPE, "volume/later"), member("volume/later")], "not a file before it"),
        ([member("volume/etc", tarfile.SYMTYPE, "/etc"), member("volume/etc/passwd")], "through the symbolic link"),
        ([member("volume", tarfile.SYMTYPE, "/")], "its top folder volume is a symbolic link"),
    ],
)
def test_device_files_fifos_and_links_out_of_the_volume_are_refused(
    tmp_path: Path, members: list[tarfile.TarInfo], problem: str
) -> None:
    """A restore refuses the whole archive before writing anything, and says how to take the member out."""
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"") if info.isfile() else None)
    said = str(archive_problem(path))
    assert problem in said
    assert f"take it out first: tar --delete -f {path} volume" in said


def test_links_inside_a_volume_are_kept(tmp_path: Path) -> None:
    """Users' volumes hold symbolic links (a virtual environment's python) and hard links: they pass."""
    path = tmp_path / "ok.tar"
    with tarfile.open(path, "w") as tar:
        for info in (
            member("volume", tarfile.DIRTYPE),
            member("volume/venv/bin/python", tarfile.SYMTYPE, "/usr/bin/python3"),
            member("volume/up", tarfile.SYMTYPE, "../.."),
            member("volume/a.txt"),
            member("volume/b.txt", tarfile.LNKTYPE, "volume/a.txt"),
        ):
            tar.addfile(info, io.BytesIO(b"") if info.isfile() else None)
    assert archive_problem(path) is None


def test_backup_helpers_pass_the_socket_proxy_but_are_never_taken_for_servers() -> None:
    """hub.managed for the proxy; no hub.prefix, by which the hub lists its servers (a helper is not one)."""
    helper = VolumeArchiver(None, "lab:1", "hub", {"site": "x"})  # type: ignore[arg-type]
    assert helper.labels == {"site": "x", "hub.managed": "true", "hub.backup-helper": "true"}
