"""spawner.isolation: per_user: users' containers cannot reach each other, and each owner still reaches their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv4Network

import docker
import pytest
from docker.models.containers import Container

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError as exc:
    print("unreachable:", exc); sys.exit(1)
print("reachable")
"""


def address_of(container: Container) -> str:
    return next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]


def reaches(source: Container, target: Container, port: int = 8000) -> bool:
    """Whether a TCP connection from inside ``source`` (as its user) to ``target``'s server succeeds."""
    code, output = source.exec_run(["python3", "-c", PROBE, address_of(target), str(port)])
    assert code in (0, 1), output
    return code == 0


def tidy(client: docker.DockerClient, hub: HubProcess) -> None:
    for container in client.containers.list(all=True, filters={"label": f"hub.prefix={hub.prefix}"}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": [f"hub.prefix={hub.prefix}", "hub.network=per-user"]}):
        network.remove()


def start_two(hub: HubProcess) -> tuple[HubUser, HubUser]:
    users = []
    for name in ("alice", "bob"):
        hub.add_user(name, password_of(name))
        user = HubUser(hub.url, name)
        assert user.login(password_of(name)).url.endswith("/hub/home")
        assert user.start("echo").get("ready") is True
        users.append(user)
    return users[0], users[1]


@pytest.fixture(scope="module")
def pool(run_prefix: str) -> IPv4Network:
    return IPv4Network(f"10.213.{(int(run_prefix[-4:], 16) + 1) % 250}.0/24")


@pytest.fixture(scope="module")
def isolated(hub_factory: HubFactory, pool: IPv4Network, docker_client: docker.DockerClient) -> Iterator[HubProcess]:
    hub = hub_factory(spawner={"isolation": "per_user", "isolated_subnet_pool": str(pool)})
    yield hub
    tidy(docker_client, hub)


@pytest.fixture(scope="module")
def shared(hub_factory: HubFactory, docker_client: docker.DockerClient) -> Iterator[HubProcess]:
    hub = hub_factory(spawner={"isolation": "shared"})
    yield hub
    tidy(docker_client, hub)


def test_isolated_users_cannot_reach_each_other_yet_each_reaches_their_own_server(
    isolated: HubProcess, docker_client: docker.DockerClient, pool: IPv4Network
) -> None:
    alice, bob = start_two(isolated)
    alices = docker_client.containers.get(f"{isolated.prefix}-user-alice")
    bobs = docker_client.containers.get(f"{isolated.prefix}-user-bob")
    assert not reaches(alices, bobs)
    assert not reaches(bobs, alices)
    assert reaches(alices, alices)  # the probe itself works

    for user in (alice, bob):  # through Traefik and the hub, each owner still gets to their server
        status, body, _ = user.raw_get(f"/user/{user.name}/echo")
        assert status == 200, body
        assert json.loads(body)["path"] == f"/user/{user.name}/echo"
    status, _, _ = bob.raw_get("/user/alice/echo")
    assert status == 403

    networks = {}
    for name, container in (("alice", alices), ("bob", bobs)):
        (network_name,) = container.attrs["NetworkSettings"]["Networks"]
        assert network_name == f"{isolated.prefix}-net-{name}"
        network = docker_client.networks.get(network_name)
        assert network.attrs["Labels"]["hub.username"] == name
        networks[name] = IPv4Network(network.attrs["IPAM"]["Config"][0]["Subnet"])
    assert networks["alice"] != networks["bob"]
    assert all(subnet.subnet_of(pool) and subnet.prefixlen == 28 for subnet in networks.values())

    assert alice.stop().url.endswith("/hub/home")
    assert not docker_client.networks.list(filters={"label": f"hub.prefix={isolated.prefix}", "name": "alice"})
    assert bob.raw_get("/user/bob/echo")[0] == 200


def test_shared_users_can_reach_each_other(shared: HubProcess, docker_client: docker.DockerClient) -> None:
    """What per_user is for: on the shared network, one user's container reaches another's server directly."""
    start_two(shared)
    alices = docker_client.containers.get(f"{shared.prefix}-user-alice")
    bobs = docker_client.containers.get(f"{shared.prefix}-user-bob")
    assert reaches(alices, bobs)
