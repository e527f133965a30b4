"""Chosen limits and GPU device requests reach the real Docker daemon (this machine has no GPU)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from hub import names
from hub.config import ConfigError, ImageSpec, Settings, SpawnerSection
from hub.docker_spawner import DockerSpawner
from hub.errors import SpawnError
from hub.gpus import check_gpus, has_nvidia_support
from hub.resources import Limits, resolve
from hub.spawner import SpawnRequest
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("dump_containers_on_failure")]


@pytest.fixture
async def spawner(run_prefix: str, docker_client: docker.DockerClient) -> AsyncIterator[DockerSpawner]:
    settings = SpawnerSection(
        prefix=f"{run_prefix}-gp",
        network=f"{run_prefix}-net",
        start_timeout=30,
        stop_timeout=1,
        extra_labels={RUN_LABEL: run_prefix},
    )
    instance = DockerSpawner(settings)
    yield instance
    await instance.close()


@pytest.fixture
def echo_image(base_image: str, echo_command: list[str]) -> ImageSpec:
    return ImageSpec(
        name="echo",
        display_name="Echo",
        image=base_image,
        jupyter=False,
        command=echo_command,
        port=8000,
        volume_mount="/data",
        choices={
            "mem_limit": {"options": ["128m", "256m"], "default": "128m"},
            "cpu_limit": {"options": [0.25, 0.5], "default": 0.5},
            "gpus": {"options": [0, 1], "default": 0},
        },
    )


def request_for(name: str, image: ImageSpec, limits: Limits | None, gpu_ids: tuple[str, ...] = ()) -> SpawnRequest:
    return SpawnRequest(
        name,
        names.user_slug(name),
        image,
        f"/user/{name}/",
        secrets.token_urlsafe(16),
        limits=limits,
        gpu_ids=gpu_ids,
    )


class CreatedContainer:
    """A progress report that looks at the container once it exists and before it starts."""

    def __init__(self, client: docker.DockerClient, name: str) -> None:
        self.client, self.name = client, name
        self.attrs: dict[str, Any] = {}

    def __call__(self, progress: int, message: str, output: tuple[str, ...] = ()) -> None:
        if message == "Starting your container":
            self.attrs = self.client.api.inspect_container(self.name)


async def test_a_server_gets_the_memory_and_cpus_chosen_for_it(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    settings = Settings(images=[echo_image])
    limits = resolve(echo_image, {"mem_limit": "256m", "cpu_limit": "0.25"}, frozenset(), False, settings)
    handle = await spawner.start(request_for("alice", echo_image, limits), lambda progress, message, output=(): None)
    try:
        host = docker_client.containers.get(handle.container_id).attrs["HostConfig"]
        assert host["Memory"] == 256 * 1024**2
        assert host["NanoCpus"] == 250_000_000
        assert not host.get("DeviceRequests")
        assert [info.gpu_ids for info in await spawner.list_servers() if info.container_id == handle.container_id] == [
            ()
        ]
    finally:
        await spawner.stop(handle)


async def test_without_chosen_limits_the_image_limits_apply_as_before(
    spawner: DockerSpawner, docker_client: docker.DockerClient, base_image: str, echo_command: list[str]
) -> None:
    image = ImageSpec(
        name="echo",
        image=base_image,
        jupyter=False,
        command=echo_command,
        port=8000,
        volume_mount="/data",
        mem_limit="96m",
        cpu_limit=0.5,
    )
    handle = await spawner.start(request_for("bob", image, None), lambda progress, message, output=(): None)
    try:
        host = docker_client.containers.get(handle.container_id).attrs["HostConfig"]
        assert (host["Memory"], host["NanoCpus"]) == (96 * 1024**2, 500_000_000)
    finally:
        await spawner.stop(handle)


async def test_gpus_go_to_docker_as_a_device_request_and_a_host_without_them_says_so(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    assert not has_nvidia_support(await spawner.daemon_info()), "this test expects a machine without GPUs"
    name = "carol"
    container_name = names.container_name(spawner.settings.prefix, names.user_slug(name))
    created = CreatedContainer(docker_client, container_name)
    limits = Limits("128m", 0.5, 1)
    with pytest.raises(SpawnError) as failed:
        await spawner.start(request_for(name, echo_image, limits, gpu_ids=("0",)), created)

    assert created.attrs["HostConfig"]["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert created.attrs["Config"]["Labels"]["hub.gpus"] == "0"
    assert created.attrs["HostConfig"]["Memory"] == 128 * 1024**2
    assert failed.value.user_message == (
        "Your server needs a GPU, but Docker on this host cannot give GPUs to containers "
        "(it has no NVIDIA runtime). Please tell an admin."
    )
    assert "nvidia" in failed.value.detail
    assert not docker_client.containers.list(all=True, filters={"name": container_name})  # nothing left behind


async def test_the_start_up_check_reports_the_missing_nvidia_runtime(
    spawner: DockerSpawner, echo_image: ImageSpec
) -> None:
    info = await spawner.daemon_info()
    settings = Settings(images=[echo_image], spawner={"gpus": 1})
    with pytest.raises(ConfigError) as refused:
        check_gpus(settings, info)
    assert str(refused.value).startswith("image echo asks for GPUs, but Docker on this host has no NVIDIA runtime")
    assert "runc" in str(refused.value)
    no_gpu_image = echo_image.model_copy(update={"choices": None})
    assert check_gpus(Settings(images=[no_gpu_image]), info).total == 0  # no GPU asked for: the hub starts
