"""The hub with ``spawner.backend: swarm``: servers are one-replica Swarm services, reached through Traefik.

The hub and Traefik run on the host, as in the other end-to-end tests; they reach a service's task through its
docker_gwbridge address (``spawner.address: ip``), the one address the host can route to on a one-node Swarm.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import pytest

from tests.client import HubUser, wait_for
from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.hub import HubFactory, HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
PASSWORD = "swarm-password"
DUMMY = {"type": "dummy", "dummy_password": PASSWORD, "admin_users": ["admin"]}
FAST = {"reconcile_interval": 1, "dependency_check_interval": 1}


@pytest.fixture(scope="module")
def swarm_images(base_image: str, echo_command: list[str]) -> list[dict[str, Any]]:
    echo = {"image": base_image, "jupyter": False, "port": 8000, "default_url": "/", "volume_mount": "/data"}
    crashy = ["sh", "-c", 'echo "swarm test: serving on 8000"; exec "$@"', "sh", *echo_command]
    return [
        {"name": "echo", "command": echo_command, "mem_limit": "128m", "cpu_limit": 0.25, **echo},
        {"name": "crashy", "command": crashy, "mem_limit": "128m", **echo},
        {
            "name": "broken",
            "command": ["sh", "-c", "echo settings file is missing >&2; echo giving up >&2; exit 3"],
            **echo,
        },
        {"name": "huge", "command": echo_command, "mem_limit": "4096g", **echo},
        {"name": "slow", "command": ["sh", "-c", 'sleep 60; exec "$@"', "sh", *echo_command], **echo},
    ]


@pytest.fixture(scope="module")
def swarm_hub(hub_factory: HubFactory, swarm: str, swarm_images: list[dict[str, Any]]) -> HubProcess:
    return hub_factory(auth=DUMMY, images=swarm_images, spawner={"backend": "swarm", "network": swarm}, lifecycle=FAST)


def log_in(hub: HubProcess, name: str) -> HubUser:
    user = HubUser(hub.url, name)
    assert user.login(PASSWORD).url.endswith("/hub/home")
    return user


def start_and_follow(user: HubUser, image: str) -> list[dict[str, Any]]:
    response = user.post_form("/hub/spawn", {"image": image}, xsrf_from="/hub/spawn")
    assert response.status_code == 200, response.text[:300]
    events = []
    with user.get(f"/hub/api/users/{user.name}/server/progress", stream=True) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def service_of(client: docker.DockerClient, hub: HubProcess, name: str) -> Any:
    found = client.services.list(filters={"name": f"{hub.prefix}-user-{name}"})
    return found[0] if found else None


def test_a_server_is_a_service_reached_through_traefik_and_stops(
    swarm_hub: HubProcess, docker_client: docker.DockerClient, run_prefix: str
) -> None:
    alice = log_in(swarm_hub, "alice")
    events = start_and_follow(alice, "echo")
    assert events[-1].get("ready") is True, events[-1]
    messages = [event["message"] for event in events]
    assert any(" on node " in message for message in messages), messages  # the task's state, where it runs
    answer = alice.get("/user/alice/hello")
    assert answer.status_code == 200 and "/user/alice/hello" in answer.text

    service = service_of(docker_client, swarm_hub, "alice")
    spec = service.attrs["Spec"]
    assert spec["Labels"]["hub.username"] == "alice" and spec["Labels"][RUN_LABEL] == run_prefix
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"]["hub.prefix"] == swarm_hub.prefix
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"]["MemoryBytes"] == resources["Reservations"]["MemoryBytes"] == 128 * 1024**2
    assert resources["Limits"]["NanoCPUs"] == resources["Reservations"]["NanoCPUs"] == 250_000_000

    assert alice.stop().status_code in (200, 302)
    wait_for(lambda: service_of(docker_client, swarm_hub, "alice") is None, 30, "the service to be removed")
    wait_for(lambda: alice.get("/user/alice/hello").status_code != 200, 15, "the route to go")
    assert 'data-state="stopped"' in alice.get("/hub/home").text


def test_a_restarted_hub_adopts_the_running_service(swarm_hub: HubProcess, docker_client: docker.DockerClient) -> None:
    bob = log_in(swarm_hub, "bob")
    assert start_and_follow(bob, "echo")[-1].get("ready") is True
    before = service_of(docker_client, swarm_hub, "bob").id
    swarm_hub.kill()
    swarm_hub.start()
    assert bob.get("/user/bob/after-restart").status_code == 200
    assert 'data-state="running"' in bob.get("/hub/home").text
    assert service_of(docker_client, swarm_hub, "bob").id == before
    bob.stop()


def test_a_crashed_server_is_reported_stopped_with_its_log(
    swarm_hub: HubProcess, docker_client: docker.DockerClient
) -> None:
    carol = log_in(swarm_hub, "carol")
    assert start_and_follow(carol, "crashy")[-1].get("ready") is True
    service = service_of(docker_client, swarm_hub, "carol")
    (container,) = docker_client.containers.list(filters={"label": f"com.docker.swarm.service.id={service.id}"})
    container.kill()

    page = wait_for(
        lambda: (text := carol.get("/hub/home").text) and ('data-state="stopped"' in text) and text,
        30,
        "the crash report",
    )
    assert "exit code 137" in page
    assert "swarm test: serving on 8000" in page  # the log tail
    assert carol.get("/user/carol/gone").status_code != 200
    wait_for(lambda: service_of(docker_client, swarm_hub, "carol") is None, 30, "the crashed service to go")


def test_a_server_that_exits_while_starting_shows_its_exit_code_and_log(
    swarm_hub: HubProcess, docker_client: docker.DockerClient
) -> None:
    dave = log_in(swarm_hub, "dave")
    last = start_and_follow(dave, "broken")[-1]
    assert last.get("failed") is True, last
    assert "exit code 3" in str(last["message"])
    assert "giving up" in dave.get("/hub/spawn-pending/dave").text
    assert service_of(docker_client, swarm_hub, "dave") is None


def test_no_node_with_room_fails_in_plain_words(swarm_hub: HubProcess, docker_client: docker.DockerClient) -> None:
    erin = log_in(swarm_hub, "erin")
    events = start_and_follow(erin, "huge")
    assert events[-1].get("failed") is True, events[-1]
    assert "No machine in the cluster has enough free memory or CPUs" in str(events[-1]["message"])
    assert service_of(docker_client, swarm_hub, "erin") is None


def test_the_spawn_queue_holds_with_services(hub_factory: HubFactory, swarm: str, swarm_images: list[Any]) -> None:
    hub = hub_factory(
        auth=DUMMY,
        images=swarm_images,
        spawner={"backend": "swarm", "network": swarm},
        lifecycle={"concurrent_spawns": 2},
    )
    users = [log_in(hub, f"queue{number}") for number in range(5)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda user: start_and_follow(user, "echo"), users))
    for user, events in zip(users, results, strict=True):
        assert events[-1].get("ready") is True, (user.name, events[-1])
        assert user.get(f"/user/{user.name}/check").status_code == 200
    assert any("in line" in event["message"] for events in results for event in events)
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda user: user.stop(), users))


def test_a_start_stopped_halfway_leaves_no_service(swarm_hub: HubProcess, docker_client: docker.DockerClient) -> None:
    gina = log_in(swarm_hub, "gina")
    response = gina.post_form("/hub/spawn", {"image": "slow"}, xsrf_from="/hub/spawn")
    assert response.status_code == 200
    wait_for(lambda: service_of(docker_client, swarm_hub, "gina"), 20, "the service to exist")
    gina.stop()
    wait_for(lambda: service_of(docker_client, swarm_hub, "gina") is None, 20, "the service to be removed")
    wait_for(lambda: 'data-state="stopped"' in gina.get("/hub/home").text, 20, "the server to show stopped")
