"""The Docker spawner against the real daemon."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiohttp
import docker
import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.docker_spawner import DockerSpawner
from hub.errors import ServiceUnavailable, SpawnError
from hub.spawner import ServerStatus, SpawnRequest
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("dump_containers_on_failure")]


@pytest.fixture
async def spawner(run_prefix: str, docker_client: docker.DockerClient) -> AsyncIterator[DockerSpawner]:
    settings = SpawnerSection(prefix=f"{run_prefix}-sp", network=f"{run_prefix}-net", start_timeout=30,
                              stop_timeout=2, pull_policy="ifnotpresent", extra_labels={RUN_LABEL: run_prefix})
    instance = DockerSpawner(settings)
    yield instance
    await instance.close()


@pytest.fixture
def echo_image(base_image: str, echo_command: list[str]) -> ImageSpec:
    return ImageSpec(name="echo", image=base_image, jupyter=False, command=echo_command, port=8000,
                     volume_mount="/data", mem_limit="128m", cpu_limit=0.5)


def request_for(name: str, image: ImageSpec) -> SpawnRequest:
    return SpawnRequest(name, names.user_slug(name), image, f"/user/{name}/", secrets.token_urlsafe(16))


class Steps(list[str]):
    def __call__(self, progress: int, message: str) -> None:
        self.append(message)


@pytest.mark.parametrize("name", ["alice", "a--b", "has@example.org", "bob.smith"])
async def test_a_server_answers_then_stops_and_keeps_its_volume(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec, name: str
) -> None:
    request = request_for(name, echo_image)
    steps = Steps()
    handle = await spawner.start(request, steps)
    assert steps[-1] == "Waiting for your server to answer"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{handle.url}/x", headers={"Authorization": f"token {request.token}"}) as response:
            assert response.status == 200
            seen = await response.json()
        async with http.get(f"{handle.url}/x") as response:
            assert response.status == 403
    assert seen["uid"] == 1000
    container = docker_client.containers.get(handle.container_id)
    assert container.name == names.container_name(spawner.settings.prefix, names.user_slug(name))
    assert container.labels["hub.username"] == name
    assert container.attrs["HostConfig"]["Memory"] == 128 * 1024**2
    assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert not any("docker.sock" in mount["Source"] for mount in container.attrs["Mounts"])
    assert await spawner.status(handle) is ServerStatus.RUNNING

    await spawner.stop(handle)
    await spawner.stop(handle)  # stopping twice is fine
    assert await spawner.status(handle) is ServerStatus.MISSING
    assert docker_client.volumes.get(handle.volume_name).attrs["Labels"]["hub.username"] == name


async def test_a_container_that_exits_reports_code_and_log(spawner: DockerSpawner, base_image: str,
                                                          docker_client: docker.DockerClient) -> None:
    image = ImageSpec(name="bad", image=base_image, jupyter=False, port=8000, volume_mount="/data",
                      command=["sh", "-c", "echo cannot read config >&2; exit 7"])
    with pytest.raises(SpawnError) as failed:
        await spawner.start(request_for("carol", image), Steps())
    assert "exit code 7" in failed.value.user_message
    assert "cannot read config" in failed.value.log_tail
    assert not docker_client.containers.list(all=True, filters={"name": f"{spawner.settings.prefix}-user-carol"})


async def test_a_container_that_runs_out_of_memory_says_so(spawner: DockerSpawner, base_image: str) -> None:
    image = ImageSpec(name="hog", image=base_image, jupyter=False, port=8000, volume_mount="/data", mem_limit="16m",
                      command=["python3", "-c", "x = bytearray(200 * 1024 * 1024); import time; time.sleep(60)"])
    with pytest.raises(SpawnError, match="ran out of memory"):
        await spawner.start(request_for("dora", image), Steps())


async def test_an_image_that_cannot_be_pulled_is_named(spawner: DockerSpawner) -> None:
    image = ImageSpec(name="gone", image="127.0.0.1:9/nobody/nothing:1", jupyter=False)
    steps = Steps()
    with pytest.raises(SpawnError, match=r"The image 127.0.0.1:9/nobody/nothing:1 could not be pulled"):
        await spawner.start(request_for("erin", image), steps)
    assert any("Pulling the image" in step for step in steps)


async def test_a_missing_image_is_not_pulled_when_the_policy_says_never(spawner: DockerSpawner, run_prefix: str) -> None:
    never = DockerSpawner(spawner.settings.model_copy(update={"pull_policy": "never"}))
    image = ImageSpec(name="gone", image=f"{run_prefix}-not-built:1", jupyter=False)
    with pytest.raises(SpawnError, match="is not on this host, and this hub does not pull images"):
        await never.start(request_for("finn", image), Steps())
    await never.close()


async def test_docker_away_is_a_clear_message(tmp_path: object) -> None:
    away = DockerSpawner(SpawnerSection(docker_url="unix:///nonexistent/docker.sock"))
    image = ImageSpec(name="any", image="any:1")
    with pytest.raises(ServiceUnavailable, match="Docker is not reachable right now"):
        await away.start(request_for("gina", image), Steps())
    assert await away.ping() is False
    await away.close()
