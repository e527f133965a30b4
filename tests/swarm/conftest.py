"""A one-node Docker Swarm on the test daemon, made for these tests and left as it was found.

``docker swarm init`` runs only when the daemon is not in a Swarm yet, and ``docker swarm leave --force`` only
when these tests made it. Other runs share the daemon at the same time: only this run's services and network
(named and labelled with the run prefix) are removed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from tests.fixtures.docker import RUN_LABEL


def swarm_state(client: docker.DockerClient) -> str:
    return str((client.info().get("Swarm") or {}).get("LocalNodeState") or "inactive")


def remove_run_services(client: docker.DockerClient, run_prefix: str) -> None:
    """This run's services, then their containers once Docker has stopped them."""
    for service in client.services.list(filters={"label": f"{RUN_LABEL}={run_prefix}"}):
        try:
            service.remove()
        except docker.errors.NotFound:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [
            container
            for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_prefix}"})
            if "com.docker.swarm.service.id" in container.labels
        ]
        if not left:
            return
        time.sleep(0.5)


@pytest.fixture(scope="session")
def swarm(docker_client: docker.DockerClient, run_prefix: str) -> Iterator[str]:
    """The name of an overlay network for this run's servers, on a Swarm that exists for the session."""
    made = False
    had_bridge = bool(docker_client.networks.list(names=["docker_gwbridge"]))  # swarm init makes it, leave keeps it
    if swarm_state(docker_client) == "inactive":
        init = ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"]
        made = subprocess.run(init, capture_output=True, text=True).returncode == 0  # else: made meanwhile?
    if swarm_state(docker_client) != "active":
        pytest.fail(f"the Docker daemon is in Swarm state {swarm_state(docker_client)!r}; these tests need a manager")
    network = f"{run_prefix}-swarm-net"
    try:
        yield network
    finally:
        remove_run_services(docker_client, run_prefix)
        for found in docker_client.networks.list(names=[network]):
            try:
                found.remove()
            except docker.errors.APIError:
                pass
        if made and docker_client.services.list():  # another run's services: that run still needs the Swarm
            print("left the Swarm active: services of another run are on it")
        elif made:
            subprocess.run(["docker", "swarm", "leave", "--force"], check=True, capture_output=True)
            if not had_bridge:
                for bridge in docker_client.networks.list(names=["docker_gwbridge"]):
                    try:
                        bridge.remove()
                    except docker.errors.APIError:
                        pass  # still in use: left for Docker
