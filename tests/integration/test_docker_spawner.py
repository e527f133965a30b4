"""The Docker spawner against the real daemon."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import aiohttp
import docker
import docker.errors
import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.docker_spawner import DockerSpawner
from hub.errors import ServiceUnavailable, SpawnError
from hub.spawner import ServerHandle, SpawnRequest
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("dump_containers_on_failure")]


@pytest.fixture
async def spawner(run_prefix: str, docker_client: docker.DockerClient) -> AsyncIterator[DockerSpawner]:
    settings = SpawnerSection(
        prefix=f"{run_prefix}-sp",
        network=f"{run_prefix}-net",
        start_timeout=30,
        stop_timeout=2,
        pull_policy="ifnotpresent",
        extra_labels={RUN_LABEL: run_prefix},
    )
    instance = DockerSpawner(settings)
    yield instance
    await instance.close()


@pytest.fixture
def echo_image(base_image: str, echo_command: list[str]) -> ImageSpec:
    return ImageSpec(
        name="echo",
        image=base_image,
        jupyter=False,
        command=echo_command,
        port=8000,
        volume_mount="/data",
        mem_limit="128m",
        cpu_limit=0.5,
    )


def request_for(name: str, image: ImageSpec) -> SpawnRequest:
    return SpawnRequest(name, names.user_slug(name), image, f"/user/{name}/", secrets.token_urlsafe(16))


class Steps(list[str]):
    def __call__(self, progress: int, message: str, output: tuple[str, ...] = ()) -> None:
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
    assert container.attrs["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    assert not any("docker.sock" in mount["Source"] for mount in container.attrs["Mounts"])
    assert [info.running for info in await spawner.list_servers() if info.container_id == handle.container_id] == [True]

    await spawner.stop(handle)
    await spawner.stop(handle)  # stopping twice is fine
    assert not [info for info in await spawner.list_servers() if info.container_id == handle.container_id]
    assert docker_client.volumes.get(handle.volume_name).attrs["Labels"]["hub.username"] == name


async def test_a_container_that_exits_reports_code_and_log(
    spawner: DockerSpawner, base_image: str, docker_client: docker.DockerClient
) -> None:
    image = ImageSpec(
        name="bad",
        image=base_image,
        jupyter=False,
        port=8000,
        volume_mount="/data",
        command=["sh", "-c", "echo cannot read config >&2; exit 7"],
    )
    with pytest.raises(SpawnError) as failed:
        await spawner.start(request_for("carol", image), Steps())
    assert "exit code 7" in failed.value.user_message
    assert "cannot read config" in failed.value.log_tail
    assert not docker_client.containers.list(all=True, filters={"name": f"{spawner.settings.prefix}-user-carol"})


async def test_a_container_that_runs_out_of_memory_says_so(spawner: DockerSpawner, base_image: str) -> None:
    image = ImageSpec(
        name="hog",
        image=base_image,
        jupyter=False,
        port=8000,
        volume_mount="/data",
        mem_limit="16m",
        command=["python3", "-c", "x = bytearray(200 * 1024 * 1024); import time; time.sleep(60)"],
    )
    with pytest.raises(SpawnError, match="ran out of memory"):
        await spawner.start(request_for("dora", image), Steps())


async def test_an_image_that_cannot_be_pulled_is_named(spawner: DockerSpawner) -> None:
    image = ImageSpec(name="gone", image="127.0.0.1:9/nobody/nothing:1", jupyter=False)
    steps = Steps()
    with pytest.raises(SpawnError, match=r"The image 127.0.0.1:9/nobody/nothing:1 could not be pulled"):
        await spawner.start(request_for("erin", image), steps)
    assert any("Pulling the image" in step for step in steps)


async def test_a_missing_image_is_not_pulled_when_the_policy_says_never(
    spawner: DockerSpawner, run_prefix: str
) -> None:
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


@pytest.mark.parametrize("driver", ["json-file", "local"])
async def test_a_containers_log_is_rotated_as_configured(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec, driver: str
) -> None:
    rotating = DockerSpawner(
        spawner.settings.model_copy(update={"log_driver": driver, "log_max_size": "1m", "log_max_files": 2})
    )
    handle = await rotating.start(request_for("hana", echo_image), Steps())
    try:
        log_config = docker_client.containers.get(handle.container_id).attrs["HostConfig"]["LogConfig"]
        assert log_config == {"Type": driver, "Config": {"max-size": "1m", "max-file": "2"}}
        assert "echo server listening on 8000" in await rotating.logs(handle)  # the hub still reads the log
    finally:
        await rotating.stop(handle)
        await rotating.close()


async def test_the_daemons_own_log_settings_can_be_kept(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    plain = DockerSpawner(spawner.settings.model_copy(update={"log_driver": "default"}))
    handle = await plain.start(request_for("hana", echo_image), Steps())
    try:
        daemon_driver = docker_client.info()["LoggingDriver"]
        log_config = docker_client.containers.get(handle.container_id).attrs["HostConfig"]["LogConfig"]
        assert log_config["Type"] == daemon_driver
    finally:
        await plain.stop(handle)
        await plain.close()


async def test_a_volume_size_limit_docker_cannot_enforce_is_refused_plainly(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    """Docker limits volume sizes only on xfs with project quotas; elsewhere the start says so (and leaves nothing)."""
    limited = DockerSpawner(spawner.settings.model_copy(update={"volume_size": "1g"}))
    request = request_for("ivy", echo_image)
    try:
        handle = await limited.start(request, Steps())
    except SpawnError as refused:
        assert refused.user_message == (
            "Your server cannot start: this hub is set to limit the size of each user's files "
            "(spawner.volume_size: 1g), but Docker on this host cannot enforce that limit. Please tell an admin."
        )
        assert "xfs file system mounted with the pquota option" in refused.detail
        assert "quota" in refused.detail  # Docker's own words
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(names.volume_name(spawner.settings.prefix, request.slug))
        assert not docker_client.containers.list(all=True, filters={"name": f"{spawner.settings.prefix}-user-ivy"})
    else:  # this host's Docker can limit volumes: the limit is on the new volume
        assert docker_client.volumes.get(handle.volume_name).attrs["Options"] == {"size": "1g"}
        await limited.stop(handle)
    finally:
        await limited.close()


async def test_a_writable_layer_limit_docker_cannot_enforce_is_refused_plainly(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    limited = DockerSpawner(spawner.settings.model_copy(update={"writable_layer_size": "2g"}))
    try:
        handle = await limited.start(request_for("jo", echo_image), Steps())
    except SpawnError as refused:
        assert refused.user_message == (
            "Your server cannot start: this hub is set to limit the size of each container's own files "
            "(spawner.writable_layer_size: 2g), but Docker on this host cannot enforce that limit. "
            "Please tell an admin."
        )
        assert "overlay2 storage driver on xfs mounted with pquota" in refused.detail
        assert not docker_client.containers.list(all=True, filters={"name": f"{spawner.settings.prefix}-user-jo"})
    else:  # overlay2 on xfs with pquota: the limit is on the container
        assert docker_client.containers.get(handle.container_id).attrs["HostConfig"]["StorageOpt"] == {"size": "2g"}
        await limited.stop(handle)
    finally:
        await limited.close()


async def test_size_limits_docker_cannot_enforce_are_named_before_anyone_starts(
    spawner: DockerSpawner, docker_client: docker.DockerClient
) -> None:
    assert await spawner.storage_problems() == []  # no limits asked for: nothing to say
    limited = DockerSpawner(spawner.settings.model_copy(update={"volume_size": "1g", "writable_layer_size": "2g"}))
    try:
        problems = await limited.storage_problems()
    finally:
        await limited.close()
    info = docker_client.info()
    layers_limited = info["Driver"] == "overlay2" and dict(info["DriverStatus"]).get("Backing Filesystem") == "xfs"
    try:
        docker_client.volumes.create(
            f"{spawner.settings.prefix}-probe",
            driver_opts={"size": "1m"},
            labels={RUN_LABEL: spawner.settings.extra_labels[RUN_LABEL]},
        ).remove()
        volumes_limited = True
    except docker.errors.APIError:
        volumes_limited = False
    if not volumes_limited:
        assert problems[0].startswith("spawner.volume_size is 1g, but Docker here cannot limit volume sizes (")
        assert "xfs file system mounted with the pquota option" in problems[0]
    if not layers_limited:
        assert problems[-1].startswith(
            f"spawner.writable_layer_size is 2g, but Docker here uses {info['Driver']} on "
            f"{dict(info['DriverStatus']).get('Backing Filesystem')}: Docker must use the overlay2 storage driver"
        )
    assert len(problems) == (not volumes_limited) + (not layers_limited)
    assert not docker_client.volumes.list(filters={"name": f"{spawner.settings.prefix}-size-probe"})


async def test_dockers_event_stream_tells_when_a_starting_container_exits(
    spawner: DockerSpawner, base_image: str, run_prefix: str, docker_client: docker.DockerClient
) -> None:
    """The spawner learns of an exit from Docker's event stream (one for the hub), not by asking per container."""
    labels = names.labels(spawner.settings.prefix, "erin", "erin", {RUN_LABEL: run_prefix})
    container = docker_client.containers.run(
        base_image,
        ["sh", "-c", "sleep 2; exit 3"],
        name=f"{spawner.settings.prefix}-events",
        labels=labels,
        detach=True,
    )
    try:
        died = spawner.deaths.watch(container.id or "")
        await asyncio.wait_for(died.wait(), 30)
        assert spawner.deaths.live
        container.reload()
        assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 3
        other = spawner.deaths.watch("another-container")  # someone else's exit wakes nobody
        assert not other.is_set()
    finally:
        container.remove(force=True)


async def test_a_leftover_container_and_a_pruned_network_do_not_stop_the_next_start(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec, base_image: str
) -> None:
    """The spawner looks the shared network up once and creates a container without removing a namesake first:
    a container left with the server's name (a hub stopped mid-start) and the network removed since the last
    start (``docker network prune``) are both mended, and the person's start still works."""
    request = request_for("dora", echo_image)
    first = await spawner.start(request, Steps())
    await spawner.stop(first)
    docker_client.networks.get(spawner.settings.network).remove()  # what `docker network prune` does when idle
    leftover = docker_client.containers.create(
        base_image,
        ["sleep", "300"],
        name=first.container_name,
        labels={RUN_LABEL: spawner.settings.extra_labels[RUN_LABEL]},
    )
    second = await spawner.start(request, Steps())
    try:
        assert second.container_name == first.container_name
        assert second.container_id != leftover.id
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(leftover.id)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{second.url}/x", headers={"Authorization": f"token {request.token}"}) as answer:
                assert answer.status == 200
        assert docker_client.networks.get(spawner.settings.network).attrs["Labels"][RUN_LABEL]
    finally:
        await spawner.stop(second)


async def test_a_stop_whose_caller_gives_up_still_removes_the_container(
    spawner: DockerSpawner, docker_client: docker.DockerClient, base_image: str
) -> None:
    """A stop cancelled while Docker is still stopping the container (a hub shutting down, a caller's timeout)
    finishes anyway: the container is removed, not left stopped under the server's name."""
    name = names.container_name(spawner.settings.prefix, names.user_slug("eli"))
    stubborn = docker_client.containers.run(  # ignores SIGTERM: Docker waits out stop_timeout (2 s), then kills
        base_image,
        ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
        name=name,
        detach=True,
        labels={RUN_LABEL: spawner.settings.extra_labels[RUN_LABEL]},
    )
    handle = ServerHandle(str(stubborn.id), name, "unused-volume", "http://127.0.0.1:9")
    stopping = asyncio.create_task(spawner.stop(handle))
    await asyncio.sleep(0.5)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        try:
            docker_client.containers.get(name)
        except docker.errors.NotFound:
            return
        await asyncio.sleep(0.25)
    pytest.fail(f"{name} was left behind after a cancelled stop")
