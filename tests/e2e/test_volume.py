"""A user's files live in their own volume and survive stop and start."""

from __future__ import annotations

import docker
import pytest

from tests.client import HubUser
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


def test_a_file_survives_stop_and_start(hub: HubProcess, docker_client: docker.DockerClient) -> None:
    alice = HubUser(hub.url, "alice")
    alice.login(password_of("alice"))
    assert alice.start("jupyterlab").get("ready") is True
    saved = alice.send(
        "PUT", "/user/alice/api/contents/kept.txt", json={"type": "file", "format": "text", "content": "still here"}
    )
    assert saved.status_code in (200, 201), saved.text

    assert alice.stop().url.endswith("/hub/home")
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-alice"})
    assert alice.get("/user/alice/api/contents/kept.txt").status_code == 503  # the hub: not running

    assert alice.start("jupyterlab").get("ready") is True
    reread = alice.get("/user/alice/api/contents/kept.txt")
    assert reread.status_code == 200
    assert reread.json()["content"] == "still here"
    volumes = docker_client.volumes.list(filters={"label": ["hub.username=alice", f"hub.prefix={hub.prefix}"]})
    assert [volume.name.startswith(f"{hub.prefix}-data-alice-") for volume in volumes] == [True]
    assert volumes[0].attrs["Labels"]["hub.user"] == "alice"


def test_a_name_made_again_does_not_get_the_old_accounts_files(
    hub: HubProcess, docker_client: docker.DockerClient
) -> None:
    hub.add_user("jsmith", password_of("jsmith"))
    last_term = HubUser(hub.url, "jsmith")
    last_term.login(password_of("jsmith"))
    assert last_term.start("jupyterlab").get("ready") is True
    saved = last_term.send(
        "PUT",
        "/user/jsmith/api/contents/grades.txt",
        json={"type": "file", "format": "text", "content": "last term's work"},
    )
    assert saved.status_code in (200, 201), saved.text
    assert last_term.stop().url.endswith("/hub/home")
    assert hub.cli("user", "remove", "jsmith").returncode == 0  # the volume is kept, as the README says

    hub.add_user("jsmith", password_of("jsmith"))
    next_term = HubUser(hub.url, "jsmith")
    next_term.login(password_of("jsmith"))
    assert next_term.start("jupyterlab").get("ready") is True
    assert next_term.get("/user/jsmith/api/contents/grades.txt").status_code == 404
    volumes = docker_client.volumes.list(filters={"label": ["hub.username=jsmith", f"hub.prefix={hub.prefix}"]})
    assert len(volumes) == 2  # last term's files are kept apart, for the admin to hand over or remove
    assert next_term.stop().url.endswith("/hub/home")
