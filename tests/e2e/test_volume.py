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
    saved = alice.http.put(f"{hub.url}/user/alice/api/contents/kept.txt", timeout=30,
                           json={"type": "file", "format": "text", "content": "still here"})
    assert saved.status_code in (200, 201), saved.text

    assert alice.stop().url.endswith("/hub/home")
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-alice"})
    assert alice.get("/user/alice/api/contents/kept.txt").status_code == 503  # the hub: not running

    assert alice.start("jupyterlab").get("ready") is True
    reread = alice.get("/user/alice/api/contents/kept.txt")
    assert reread.status_code == 200
    assert reread.json()["content"] == "still here"
    volume = docker_client.volumes.get(f"{hub.prefix}-vol-alice")
    assert volume.attrs["Labels"]["hub.user"] == "alice"
