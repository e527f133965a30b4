"""A real hub builds and pulls its images right after it starts, before anyone asks, and the admin panel
shows how that goes (real Docker, real Traefik)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from tests.client import HubUser, wait_for
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

UNPULLABLE = "127.0.0.1:9/hubtest/missing:latest"
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo {marker} > /tmp/prepared-by-the-hub
RUN sleep 8
RUN true
"""


@pytest.fixture(scope="module")
def course_image(run_prefix: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """A tag no other run uses (the build is never a cache hit); removed afterwards."""
    tag = f"{run_prefix}-prep:{secrets.token_hex(3)}"
    yield tag
    try:
        docker_client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture(scope="module")
def preparing_hub(
    hub_factory: HubFactory, base_image: str, course_image: str, tmp_path_factory: pytest.TempPathFactory
) -> HubProcess:
    images_dir = tmp_path_factory.mktemp("images")
    (images_dir / "course").mkdir()
    (images_dir / "course" / "Dockerfile").write_text(DOCKERFILE.replace("{marker}", course_image))
    images = [
        {"name": "course", "display_name": "Course", "image": course_image, "build": "course", "jupyter": False},
        {"name": "missing", "display_name": "Missing", "image": UNPULLABLE, "jupyter": False},
    ]
    spawner = {"images_dir": str(images_dir), "build_args": {"BASE_IMAGE": base_image}}
    hub = hub_factory(images=images, spawner=spawner)
    hub.add_user("admin", password_of("admin"), admin=True)
    return hub


def image_states(admin: HubUser) -> dict[str, tuple[str, str]]:
    """Each image's state and its words, as the admin panel's "Images" section shows them."""
    page = admin.get("/hub/admin").text
    rows = re.findall(
        r'<tr data-image="([^"]+)">.*?class="image-state" data-state="([a-z]+)">(.*?)</td>', page, flags=re.S
    )
    return {name: (state, " ".join(re.sub(r"<[^>]+>", " ", words).split())) for name, state, words in rows}


def test_the_hub_builds_an_image_right_after_it_starts_and_the_admin_panel_shows_it(
    preparing_hub: HubProcess, course_image: str, docker_client: docker.DockerClient
) -> None:
    admin = HubUser(preparing_hub.url, "admin")
    admin.login(password_of("admin"))
    building = wait_for(
        lambda: (states := image_states(admin)).get("course", ("", ""))[0] == "building" and states["course"],
        30,
        "the admin panel to show the course image being built",
    )
    wait_for(lambda: "Step 4/5 : RUN sleep 8" in image_states(admin)["course"][1], 60, "the build's fourth step")
    ready = wait_for(
        lambda: (states := image_states(admin))["course"][0] == "ready" and states["course"], 120, "the build to end"
    )
    assert building[1].startswith("building")
    assert ready[1].startswith("ready built in")
    assert docker_client.images.get(course_image)  # nobody started a server: the hub built it by itself
    assert not docker_client.containers.list(all=True, filters={"name": preparing_hub.prefix})
    assert f"built {course_image}" in preparing_hub.log()


def test_an_image_that_cannot_be_pulled_is_shown_as_failed_with_the_reason(preparing_hub: HubProcess) -> None:
    admin = HubUser(preparing_hub.url, "admin")
    admin.login(password_of("admin"))
    state, words = wait_for(
        lambda: (found := image_states(admin).get("missing")) and found[0] == "failed" and found,
        60,
        "the pull to fail",
    )
    assert f"The image {UNPULLABLE} could not be pulled" in words
    api = admin.get("/hub/api/images").json()
    missing = next(image for image in api["images"] if image["name"] == "missing")
    assert missing["state"] == "failed" and "could not be pulled" in missing["message"]
    assert f"image {UNPULLABLE} could not be prepared" in preparing_hub.log()
