"""The Swarm spawner through the socket proxy, against the real daemon: its services pass, a service that would
reach the host does not."""

from __future__ import annotations

import json
import secrets
import time

import aiohttp
import docker
import docker.errors
import docker.types
import pytest

from hub import names
from hub.spawner import SpawnRequest
from hub.swarm_spawner import SwarmSpawner
from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.swarm import echo_image, swarm_settings
from tests.integration.test_socket_proxy import Steps, proxy_url, through_proxy

pytestmark = [pytest.mark.docker]
__all__ = ["proxy_url", "through_proxy"]  # fixtures used here


async def test_a_service_starts_answers_and_stops_through_the_proxy(
    proxy_url: str, swarm: str, run_prefix: str, base_image: str, echo_command: list[str]
) -> None:
    settings = swarm_settings(proxy_url, run_prefix, swarm, "sp")
    spawner = SwarmSpawner(settings)
    image = echo_image(base_image, echo_command)
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


def test_other_services_and_their_tasks_are_not_read_through_the_proxy(
    through_proxy: docker.DockerClient, docker_client: docker.DockerClient, swarm: str, base_image: str, run_prefix: str
) -> None:
    """Security fix: every service's and task's environment (other programs' secrets) could be read through the
    proxy, and a service call went on under the name the caller gave instead of the id that was checked."""
    run = {RUN_LABEL: run_prefix}
    hub_labels = {"hub.managed": "true", **run}
    other = docker_client.services.create(
        base_image,
        ["sleep", "60"],
        name=f"{run_prefix}-sp-app",
        env=["OTHER_APP_PASSWORD=hunter2"],
        labels=run,
        container_labels=run,
    )
    ours = docker_client.services.create(
        base_image, ["sleep", "60"], name=f"{run_prefix}-sp-ours", labels=hub_labels, container_labels=hub_labels
    )
    try:
        listed = {
            service.name for service in through_proxy.services.list(filters={"label": f"{RUN_LABEL}={run_prefix}"})
        }
        assert ours.name in listed and other.name not in listed
        with pytest.raises(docker.errors.APIError) as refused:
            through_proxy.api.inspect_service(other.id)
        assert refused.value.status_code == 403 and "not a service this hub made" in str(refused.value)
        assert through_proxy.api.inspect_service(ours.name)["ID"] == ours.id
        deadline = time.monotonic() + 20
        while not docker_client.api.tasks(filters={"service": [other.id]}) and time.monotonic() < deadline:
            time.sleep(0.2)
        tasks = through_proxy.api.tasks(filters={"service": [other.id, ours.id]})
        assert {task["ServiceID"] for task in tasks} <= {ours.id}
        assert "hunter2" not in json.dumps(tasks)
        through_proxy.api.remove_service(ours.name)  # the hub's own, by name: forwarded by its id
        assert not docker_client.services.list(filters={"id": ours.id})
    finally:
        for service in (other, ours):
            try:
                service.remove()
            except docker.errors.NotFound:
                pass
