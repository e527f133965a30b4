"""Per-user networks (spawner.isolation: per_user) against the real daemon: apart, addressed from the pool, tidied."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv4Network
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.docker_spawner import DockerSpawner
from hub.errors import SpawnError
from hub.spawner import ServerHandle, SpawnRequest
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("dump_containers_on_failure")]

PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError as exc:
    print("unreachable:", exc); sys.exit(1)
print("reachable")
"""


def reaches(container: Container, url: str) -> bool:
    """Whether a TCP connection from inside ``container`` to the host:port of ``url`` succeeds."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    code, output = container.exec_run(["python3", "-c", PROBE, host, port])
    assert code in (0, 1), output
    return code == 0


def subnet_of(client: docker.DockerClient, network: str) -> IPv4Network:
    return IPv4Network(client.networks.get(network).attrs["IPAM"]["Config"][0]["Subnet"])


def network_exists(client: docker.DockerClient, name: str) -> bool:
    return any(network.name == name for network in client.networks.list(names=[name]))


@pytest.fixture
def pool(run_prefix: str) -> IPv4Network:
    """A /24 of the run's own, so a test run never shares addresses with another."""
    return IPv4Network(f"10.213.{int(run_prefix[-4:], 16) % 250}.0/24")


@pytest.fixture
def prefix(run_prefix: str) -> Iterator[str]:
    # at most 16 characters; "n" keeps it apart from the hubs' numbered prefixes (tests/fixtures/hub.py), whose
    # volumes another test checks: two hex digits alone could be one of those numbers
    value = f"{run_prefix}-n{secrets.token_hex(1)[0]}"
    yield value
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"hub.prefix={value}"}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": f"hub.prefix={value}"}):
        network.reload()
        for attached in network.attrs.get("Containers") or {}:
            network.disconnect(attached, force=True)
        network.remove()  # fails loudly if a test left something behind on it
    for volume in client.volumes.list(filters={"label": f"hub.prefix={value}"}):
        volume.remove(force=True)
    client.close()


@pytest.fixture
def helper(run_prefix: str, docker_client: docker.DockerClient, base_image: str) -> Iterator[Container]:
    """A stand-in for Traefik in a container: on no network of the hub's until the spawner joins it."""
    container = docker_client.containers.run(
        base_image,
        ["sleep", "600"],
        labels={RUN_LABEL: run_prefix},
        name=f"{run_prefix}-helper-{secrets.token_hex(2)}",
        init=True,
        detach=True,
    )
    yield container
    container.remove(force=True)


def settings_for(prefix: str, run_prefix: str, pool: IPv4Network, **more: Any) -> SpawnerSection:
    values: dict[str, Any] = {
        "prefix": prefix,
        "network": f"{prefix}-shared",
        "start_timeout": 30,
        "stop_timeout": 1,
        "extra_labels": {RUN_LABEL: run_prefix},
        "isolation": "per_user",
        "isolated_subnet_pool": pool,
    }
    return SpawnerSection(**{**values, **more})


@pytest.fixture
async def spawner(prefix: str, run_prefix: str, pool: IPv4Network) -> AsyncIterator[DockerSpawner]:
    instance = DockerSpawner(settings_for(prefix, run_prefix, pool))
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
    )


def request_for(name: str, image: ImageSpec) -> SpawnRequest:
    return SpawnRequest(name, names.user_slug(name), image, f"/user/{name}/", secrets.token_urlsafe(16))


def ignore(progress: int, message: str, output: tuple[str, ...] = ()) -> None:
    pass


async def start_all(spawner: DockerSpawner, image: ImageSpec, *users: str) -> list[ServerHandle]:
    return list(await asyncio.gather(*(spawner.start(request_for(user, image), ignore) for user in users)))


async def test_each_server_gets_a_network_of_its_own_from_the_pool_and_cannot_reach_the_others(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec, pool: IPv4Network
) -> None:
    users = ["ann", "ben", "a-b", "cy@example.org"]
    handles = await start_all(spawner, echo_image, *users)  # at once: each network gets a subnet of its own
    networks = [names.user_network_name(spawner.settings.prefix, names.user_slug(user)) for user in users]
    subnets = [subnet_of(docker_client, network) for network in networks]
    assert len(set(subnets)) == len(users)
    assert all(subnet.subnet_of(pool) and subnet.prefixlen == 28 for subnet in subnets)
    for user, handle, network in zip(users, handles, networks, strict=True):
        container = docker_client.containers.get(handle.container_id)
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [network]
        labels = docker_client.networks.get(network).attrs["Labels"]
        assert labels["hub.username"] == user and labels["hub.container"] == handle.container_name
    ann, ben = (docker_client.containers.get(handle.container_id) for handle in handles[:2])
    assert reaches(ann, handles[0].url)  # the probe works: ann reaches her own server
    assert not reaches(ann, handles[1].url)
    assert not reaches(ben, handles[0].url)
    assert not reaches(ann, handles[3].url)

    for handle in handles:
        await spawner.stop(handle)
    assert not any(network_exists(docker_client, network) for network in networks)


async def test_shared_servers_reach_each_other(
    prefix: str, run_prefix: str, pool: IPv4Network, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    """The other side of the test above: without per_user, one user's container reaches another's server."""
    shared = DockerSpawner(settings_for(prefix, run_prefix, pool, isolation="shared"))
    ann, ben = await start_all(shared, echo_image, "ann", "ben")
    try:
        assert reaches(docker_client.containers.get(ann.container_id), ben.url)
    finally:
        await shared.stop(ann)
        await shared.stop(ben)
        await shared.close()


async def test_connected_containers_join_each_network_and_leave_it_before_it_goes(
    prefix: str,
    run_prefix: str,
    pool: IPv4Network,
    docker_client: docker.DockerClient,
    echo_image: ImageSpec,
    helper: Container,
) -> None:
    spawner = DockerSpawner(settings_for(prefix, run_prefix, pool, connect_containers=[helper.name]))
    ann, ben = await start_all(spawner, echo_image, "ann", "ben")
    try:
        assert reaches(helper, ann.url) and reaches(helper, ben.url)
        assert reaches(helper, f"http://{ann.container_name}:8000")  # by name too (address: name under compose)
        helper.reload()
        joined = set(helper.attrs["NetworkSettings"]["Networks"])
        assert {names.user_network_name(prefix, "ann"), names.user_network_name(prefix, "ben")} <= joined

        # A recreated Traefik container has lost its networks: the next round of reconcile joins it again.
        docker_client.networks.get(names.user_network_name(prefix, "ann")).disconnect(helper)
        assert not reaches(helper, ann.url)
        await spawner.list_servers()
        assert reaches(helper, ann.url)

        await spawner.stop(ann)
        assert not network_exists(docker_client, names.user_network_name(prefix, "ann"))
        helper.reload()
        assert helper.status == "running"
        assert names.user_network_name(prefix, "ann") not in helper.attrs["NetworkSettings"]["Networks"]
    finally:
        await spawner.stop(ann)
        await spawner.stop(ben)
        await spawner.close()


async def test_a_missing_connected_container_is_a_clear_message(
    prefix: str, run_prefix: str, pool: IPv4Network, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    spawner = DockerSpawner(settings_for(prefix, run_prefix, pool, connect_containers=[f"{run_prefix}-no-traefik"]))
    with pytest.raises(SpawnError) as failed:
        await spawner.start(request_for("ann", echo_image), ignore)
    await spawner.close()
    assert "connect a container that does not exist" in failed.value.user_message
    assert f"no container '{run_prefix}-no-traefik'" in failed.value.detail
    assert not network_exists(docker_client, names.user_network_name(prefix, "ann"))
    assert not docker_client.containers.list(all=True, filters={"label": f"hub.prefix={prefix}"})


async def test_a_full_pool_refuses_the_next_server_plainly(
    prefix: str, run_prefix: str, pool: IPv4Network, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    one_network = IPv4Network((pool.network_address, 28))
    spawner = DockerSpawner(settings_for(prefix, run_prefix, one_network))
    ann = await spawner.start(request_for("ann", echo_image), ignore)
    try:
        assert subnet_of(docker_client, names.user_network_name(prefix, "ann")) == one_network
        with pytest.raises(SpawnError) as failed:
            await spawner.start(request_for("ben", echo_image), ignore)
        assert failed.value.user_message == (
            "Your server cannot start: the hub has no network addresses left for another server. Please tell an admin."
        )
        assert "spawner.isolated_subnet_pool" in failed.value.detail
        assert reaches(docker_client.containers.get(ann.container_id), ann.url)
    finally:
        await spawner.stop(ann)
        await spawner.close()


async def test_the_network_of_a_container_removed_behind_the_hubs_back_is_tidied(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    ann = await spawner.start(request_for("ann", echo_image), ignore)
    network = names.user_network_name(spawner.settings.prefix, "ann")
    docker_client.containers.get(ann.container_id).remove(force=True)
    assert network_exists(docker_client, network)
    assert await spawner.list_servers() == []
    assert not network_exists(docker_client, network)


async def test_a_sweep_during_a_start_leaves_the_new_network_alone(
    spawner: DockerSpawner, docker_client: docker.DockerClient, echo_image: ImageSpec
) -> None:
    """Reconcile may run while a start has made the network but not yet the container."""
    starting = asyncio.create_task(spawner.start(request_for("ann", echo_image), ignore))
    network = names.user_network_name(spawner.settings.prefix, "ann")
    while not network_exists(docker_client, network):
        await asyncio.sleep(0.005)
    await spawner.list_servers()
    handle = await starting
    assert network_exists(docker_client, network)
    assert reaches(docker_client.containers.get(handle.container_id), handle.url)
    await spawner.stop(handle)
