"""docker-stack.yml, as `docker stack deploy` reads it: the socket only in the proxy, everything that holds the hub's
data on a manager, the users' servers on an attachable overlay network, the hub set to the Swarm backend.

tests/swarm/test_swarm_stack.py deploys it for real on the one-node test Swarm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "docker-stack.yml"
SOCKET = "/var/run/docker.sock"


def stack_config() -> dict[str, Any]:
    """The file after `docker stack config` (merges, anchors, ${...} defaults) when the CLI has it, else plain YAML
    with the anchors resolved by the YAML reader."""
    docker = shutil.which("docker")
    if docker:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
        result = subprocess.run(
            [docker, "stack", "config", "-c", str(STACK)], capture_output=True, text=True, cwd=ROOT, env=env
        )
        if result.returncode == 0:
            return dict(yaml.safe_load(result.stdout))
        assert "unknown command" in result.stderr or "is not a docker command" in result.stderr, result.stderr
    return dict(yaml.safe_load(STACK.read_text()))


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return stack_config()


def mounts(service: dict[str, Any]) -> list[str]:
    found = []
    for volume in service.get("volumes") or []:
        found.append(volume if isinstance(volume, str) else f"{volume.get('source')}:{volume.get('target')}")
    return found


def test_only_the_socket_proxy_holds_the_docker_socket(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == {"socket-proxy", "hub", "traefik"}
    holders = [name for name, service in services.items() if any(SOCKET in mount for mount in mounts(service))]
    assert holders == ["socket-proxy"]
    assert services["socket-proxy"]["command"][:2] == ["hub", "socket-proxy"]
    assert services["socket-proxy"]["networks"] in (["docker-api"], {"docker-api": None})


def test_the_hub_its_proxy_and_traefik_run_on_a_manager_reached_by_name(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        deploy = service["deploy"]
        assert "node.role == manager" in deploy["placement"]["constraints"], name
        assert deploy["endpoint_mode"] == "dnsrr", name  # service VIPs need IPVS
    (port,) = stack["services"]["traefik"]["ports"]
    assert port["mode"] == "host" and port["target"] == 8000


def test_the_hub_uses_the_swarm_backend_through_the_proxy(stack: dict[str, Any], tmp_path: Path) -> None:
    env = stack["services"]["hub"]["environment"]
    assert env["HUB_SPAWNER__BACKEND"] == "swarm"
    assert env["HUB_SPAWNER__ADDRESS"] == "name"
    assert env["HUB_SPAWNER__DOCKER_URL"] == "tcp://socket-proxy:2375"
    assert set(stack["services"]["hub"]["networks"]) == {"internal", "users", "docker-api"}
    # The hub starts with exactly this environment and the configuration file the stack gives it.
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("HUB_")}
    try:
        os.environ.update({key: str(value) for key, value in env.items()})
        settings = load_settings(ROOT / "hub.compose.yaml")
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)
    assert settings.spawner.backend == "swarm" and settings.spawner.network == "hub-users"
    assert settings.spawner.registry is None


def test_users_servers_join_an_attachable_overlay_that_traefik_joins(stack: dict[str, Any]) -> None:
    networks = stack["networks"]
    assert networks["users"]["driver"] == "overlay" and networks["users"]["attachable"] is True
    assert networks["users"]["name"] == "hub-users"
    assert networks["internal"]["internal"] is True and networks["docker-api"]["internal"] is True
    assert "users" in stack["services"]["traefik"]["networks"]
    assert "docker-api" not in stack["services"]["traefik"]["networks"]  # Traefik cannot reach the proxy
