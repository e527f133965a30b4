"""A start that has to build its image shows the build's own latest output on the progress page, so a long
`pip install` is seen working instead of standing still (real Docker, Traefik and Chromium)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo "build of {tag}"; for part in $(seq 16); do echo "installing part $part of 16"; sleep 0.5; done
RUN true
"""


@pytest.fixture
def slow_image(run_prefix: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """A tag no other run uses (its Dockerfile names it: the build is never a cache hit); removed afterwards."""
    tag = f"{run_prefix}-slowbuild:{secrets.token_hex(3)}"
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture
def building_hub(
    hub_factory: HubFactory,
    base_image: str,
    slow_image: str,
    echo_command: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> HubProcess:
    images_dir = tmp_path_factory.mktemp("images")
    (images_dir / "slow").mkdir()
    (images_dir / "slow" / "Dockerfile").write_text(DOCKERFILE.replace("{tag}", slow_image))
    images = [
        {
            "name": "slow",
            "display_name": "Slow to build",
            "image": slow_image,
            "build": "slow",
            "jupyter": False,
            "command": echo_command,
            "port": 8000,
            "volume_mount": "/data",
        }
    ]
    spawner = {"images_dir": str(images_dir), "build_args": {"BASE_IMAGE": base_image}, "prepare_images": False}
    hub = hub_factory(images=images, spawner=spawner)
    hub.add_user("alice", password_of("alice"))
    return hub


def test_the_progress_page_shows_the_builds_latest_output(building_hub: HubProcess, page: Page) -> None:
    log_in(page, building_hub, "alice")
    page.goto(f"{building_hub.url}/hub/spawn")
    page.check("input[name=image][value=slow]")
    page.click("button#start")
    output = page.locator("#build-output")
    expect(output).to_be_visible(timeout=120_000)
    expect(output).to_contain_text(re.compile(r"installing part \d+ of 16"), timeout=60_000)
    first = output.inner_text()
    expect(output).not_to_have_text(first, timeout=30_000)  # it moves on as the build prints
    # The step's output lines go to the box, not the step list: the list names the step once.
    expect(page.locator("#progress-log li", has_text=re.compile(r"Step \d+/\d+ : RUN echo"))).to_have_count(1)
    expect(page.locator("#progress-log")).not_to_contain_text(re.compile(r"installing part \d+ of"))
    page.wait_for_url(re.compile(r"/user/alice/"), timeout=120_000)
