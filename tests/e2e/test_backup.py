"""A hub backed up while it runs comes back from the backup: passwords, tokens and users' files."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_hub_is_backed_up_while_running_wiped_and_restored(
    hub_factory: HubFactory, docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    hub = hub_factory()
    hub.add_user("alice", password_of("alice"))
    hub.add_user("bob", password_of("bob"))
    token = hub.token("alice")
    alice = HubUser(hub.url, "alice")
    alice.login(password_of("alice"))
    assert alice.start("jupyterlab").get("ready") is True
    saved = alice.send(
        "PUT", "/user/alice/api/contents/thesis.txt", json={"type": "file", "format": "text", "content": "chapter 1"}
    )
    assert saved.status_code in (200, 201), saved.text
    before = alice
    (volume,) = docker_client.volumes.list(filters={"label": ["hub.username=alice", f"hub.prefix={hub.prefix}"]})

    backup = tmp_path / "backup"
    made = hub.cli("backup", str(backup), "--volumes", "--helper-image", base_image)  # the hub keeps running
    assert made.returncode == 0, made.stderr
    assert mode(backup) == 0o700
    files = {path.name: mode(path) for path in backup.iterdir() if path.is_file()}
    assert {"hub.sqlite", "cookie_secret", "manifest.json", "volumes.txt"} <= set(files)
    assert set(files.values()) == {0o600}
    manifest = json.loads((backup / "manifest.json").read_text())
    assert [(entry["name"], entry["owners"]) for entry in manifest["volumes"]] == [(volume.name, ["alice"])]
    assert mode(backup / "volumes" / f"{volume.name}.tar") == 0o600
    assert f"-v {volume.name}:/volume:ro" in (backup / "volumes.txt").read_text()
    again = hub.cli("backup", str(backup))
    assert again.returncode == 1 and "is not empty" in again.stderr

    hub.stop()
    for container in docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-alice"}):
        container.remove(force=True)
    volume.remove()
    data_dir = hub.config_path.parent / "data"
    shutil.rmtree(data_dir)

    restored = hub.cli("restore", str(backup), "--volumes", "--helper-image", base_image)
    assert restored.returncode == 0, restored.stderr
    refused = hub.cli("restore", str(backup))
    assert refused.returncode == 1 and f"the data folder {data_dir} is not empty" in refused.stderr
    hub.start()

    assert before.get("/hub/home").url.endswith("/hub/home")  # the cookie key came back: still logged in
    alice = HubUser(hub.url, "alice")
    assert alice.login(password_of("alice")).url.endswith("/hub/home")
    me = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert alice.start("jupyterlab").get("ready") is True
    reread = alice.get("/user/alice/api/contents/thesis.txt")
    assert reread.status_code == 200 and reread.json()["content"] == "chapter 1"
    written = alice.send(
        "PUT", "/user/alice/api/contents/chapter2.txt", json={"type": "file", "format": "text", "content": "2"}
    )
    assert written.status_code in (200, 201), written.text  # the files still belong to the server's user
    assert alice.stop().url.endswith("/hub/home")
