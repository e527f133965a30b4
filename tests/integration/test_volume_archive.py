"""Volumes to tar files and back through the real Docker daemon (hub/volume_archive.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker
import pytest

from hub.backup import BackupError
from hub.config import Settings
from hub.restore import check_volumes
from hub.volume_archive import VolumeArchiver
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker]


def test_a_volume_comes_back_with_owners_and_an_existing_one_is_not_overwritten(
    docker_client: docker.DockerClient, run_prefix: str, base_image: str, tmp_path: Path
) -> None:
    labels = {RUN_LABEL: run_prefix}
    archiver = VolumeArchiver(docker_client, base_image, f"{run_prefix}-bk", labels)
    source = f"{run_prefix}-bk-source"
    docker_client.volumes.create(source, labels=labels)
    script = "echo work > /v/notes.txt && chown -R 1000:100 /v && chmod 750 /v"
    docker_client.containers.run(base_image, ["sh", "-c", script], volumes={source: {"bind": "/v"}}, remove=True)
    assert not archiver.is_empty(source)

    backup = tmp_path / "volumes"
    backup.mkdir()
    with (backup / f"{source}.tar").open("wb") as file:
        archiver.archive(source, file)
    with tarfile.open(backup / f"{source}.tar") as tar:
        assert [(m.name, m.uid, m.gid) for m in tar] == [("volume", 1000, 100), ("volume/notes.txt", 1000, 100)]

    copy = f"{run_prefix}-bk-copy"
    archiver.restore(copy, backup / f"{source}.tar", {**labels, "hub.managed": "true"})
    listing = docker_client.containers.run(
        base_image,
        ["sh", "-c", "stat -c '%u:%g %a' /v && cat /v/notes.txt"],
        volumes={copy: {"bind": "/v"}},
        remove=True,
    )
    assert listing.decode().split() == ["1000:100", "750", "work"]
    assert docker_client.volumes.get(copy).attrs["Labels"]["hub.managed"] == "true"

    settings = Settings(
        images=[{"name": "lab", "image": base_image}],  # type: ignore[list-item]
        spawner={"prefix": f"{run_prefix}-bk", "extra_labels": labels},  # type: ignore[arg-type]
    )
    entry = {"name": copy, "archive": f"{source}.tar"}
    with pytest.raises(BackupError, match=f"the volume {copy} exists and holds files"):
        check_volumes(settings, base_image, backup, [entry], force=False)
    check_volumes(settings, base_image, backup, [entry], force=True)
    empty = f"{run_prefix}-bk-empty"
    docker_client.volumes.create(empty, labels={**labels, "hub.managed": "true"})
    assert archiver.is_empty(empty)
    with pytest.raises(BackupError, match=f"the volume {source} exists, but this hub did not make it"):
        check_volumes(settings, base_image, backup, [{"name": source, "archive": f"{source}.tar"}], force=True)
    check_volumes(settings, base_image, backup, [{"name": empty, "archive": f"{source}.tar"}], force=False)

    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("etc/passwd"), io.BytesIO(b""))
    (backup / "bad.tar").write_bytes(bad.getvalue())
    with pytest.raises(BackupError, match="not inside volume/"):
        check_volumes(settings, base_image, backup, [{"name": empty, "archive": "bad.tar"}], force=False)
    assert not docker_client.containers.list(all=True, filters={"label": "hub.backup-helper"})
