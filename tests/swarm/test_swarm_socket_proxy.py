"""The Swarm spawner through the socket proxy, against the real daemon: its services pass, a service that would
reach the host does not."""

from __future__ import annotations

import secrets

import aiohttp
import docker
import docker.errors
import docker.types
import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.spawner import SpawnRequest
from hub.swarm_spawner import SwarmSpawner
from tests.fixtures.docker import RUN_LABEL
from tests.integration.test_socket_proxy import Steps, proxy_url, through_proxy

pytestmark = [pytest.mark.docker]
__all__ = ["proxy_url", "through_proxy"]  # fixtures used here


async def test_a_service_starts_answers_and_stops_through_the_proxy(
    proxy_url: str, swarm: str, run_prefix: str, base_image: str, echo_command: list[str]
) -> None:
    settings = SpawnerSection(
        backend="swarm",
        prefix=f"{run_prefix}-sp",
        network=swarm,
        start_timeout=30,
        stop_timeout=2,
        extra_labels={RUN_LABEL: run_prefix},
        docker_url=proxy_url,
    )
    spawner = SwarmSpawner(settings)
    image = ImageSpec(
        name="echo", image=base_image, jupyter=False, command=echo_command, port=8000, volume_mount="/data"
    )
    request = SpawnRequest("alice", names.user_slug("alice"), image, "/user/alice/", secrets.token_urlsafe(16))
    try:
        handle = await spawner.start(request, Steps())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{handle.url}/x", headers={"Authorization": f"token {request.token}"}) as answer:
                assert answer.status == 200
        assert "echo server listening" in await spawner.logs(handle)
        assert [info.username for info in await spawner.list_servers()] == ["alice"]
        await spawner.stop(handle)
        assert await spawner.list_servers() == []
        await spawner.remove_data(handle.volume_name)
    finally:
        await spawner.close()


def test_a_service_with_a_host_folder_is_refused(
    through_proxy: docker.DockerClient, swarm: str, base_image: str
) -> None:
    with pytest.raises(docker.errors.APIError) as refused:
        through_proxy.services.create(
            base_image,
            args=["sleep", "60"],
            name=f"{swarm}-evil",
            labels={"hub.managed": "true"},
            mounts=[docker.types.Mount("/host", "/", type="bind")],
        )
    assert refused.value.status_code == 403
    assert "named volumes" in str(refused.value)
