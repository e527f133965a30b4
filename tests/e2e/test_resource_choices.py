"""Resources chosen in the spawn form, with the real Docker, Traefik and Chromium: the selects beside the image,
the limits Docker puts on the container, a tampered value refused, the limits on the home page and in the admin
panel; and a GPU image on this GPU-less host, which the hub refuses at start-up with a clear message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import ROOT, HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def sized_echo(test_images: list[dict[str, Any]]) -> dict[str, Any]:
    """Echo, with memory and CPUs to choose instead of its fixed 256m."""
    echo = next(image for image in test_images if image["name"] == "echo")
    sized = {key: value for key, value in echo.items() if key != "mem_limit"}
    return {
        **sized,
        "name": "sized",
        "display_name": "Sized Echo",
        "choices": {
            "mem_limit": {"options": ["256m", "512m"], "default": "256m"},
            "cpu_limit": {"options": [0.5, 1], "default": 1},
        },
    }


@pytest.fixture(scope="module")
def choices_hub(hub_factory: HubFactory, sized_echo: dict[str, Any]) -> HubProcess:
    instance = hub_factory(images=[sized_echo])
    for name in ("alice", "bob", "admin"):
        instance.add_user(name, password_of(name), admin=name == "admin")
    return instance


def containers_of(client: docker.DockerClient, hub: HubProcess, name: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": [f"hub.prefix={hub.prefix}", f"hub.username={name}"]})


def test_the_memory_chosen_in_the_form_is_the_containers_limit(
    choices_hub: HubProcess, page: Page, docker_client: docker.DockerClient
) -> None:
    hub = choices_hub
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    card = page.locator(".image-card", has_text="Sized Echo")
    memory = card.locator("select[name=mem_limit]")
    expect(memory).to_have_value("256m")
    expect(card.locator("select[name=cpu_limit]")).to_have_value("1")
    memory.select_option("512m")
    page.click("#start")
    expect(page).to_have_url(re.compile(r"/user/alice/$"), timeout=120_000)

    [container] = containers_of(docker_client, hub, "alice")
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 512 * MIB
    assert host["NanoCpus"] == 1_000_000_000
    assert not host.get("DeviceRequests")

    page.goto(f"{hub.url}/hub/home")
    expect(page.locator("#limits")).to_have_text("Memory 512m · 1 CPU")
    page.context.clear_cookies()
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin")
    expect(page.locator('tr[data-user="alice"]')).to_contain_text("Memory 512m · 1 CPU")

    token = hub.token("alice")
    alice = HubUser(hub.url, "alice")
    model = alice.get("/hub/api/users/alice", headers={"Authorization": f"token {token}"}).json()
    assert model["servers"][""]["user_options"] == {"image": "sized", "mem_limit": "512m", "cpu_limit": "1"}


def test_a_tampered_choice_is_refused_and_nothing_starts(
    choices_hub: HubProcess, page: Page, docker_client: docker.DockerClient
) -> None:
    hub = choices_hub
    log_in(page, hub, "bob")
    page.goto(f"{hub.url}/hub/spawn")
    page.locator(".image-card select[name=mem_limit] option").last.evaluate("option => { option.value = '8g' }")
    page.locator(".image-card select[name=mem_limit]").select_option(index=1)
    page.click("#start")
    expect(page.locator("body")).to_contain_text("Memory 8g is not offered for Sized Echo: choose 256m or 512m.")
    assert containers_of(docker_client, hub, "bob") == []

    bob = HubUser(hub.url, "bob")
    assert bob.login(password_of("bob")).url.endswith("/hub/home")
    refused = bob.post_form("/hub/spawn", {"image": "sized", "cpu_limit": "4"}, xsrf_from="/hub/spawn")
    assert refused.status_code == 400 and "CPUs 4 is not offered for Sized Echo: choose 0.5 or 1." in refused.text
    assert containers_of(docker_client, hub, "bob") == []


def test_a_gpu_image_on_a_host_without_the_nvidia_runtime_stops_the_hub_at_start_up(
    choices_hub: HubProcess, sized_echo: dict[str, Any], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker has the NVIDIA runtime")
    config = yaml.safe_load(choices_hub.config_path.read_text())
    config["images"] = [sized_echo, {**sized_echo, "name": "cuda", "display_name": "CUDA Echo", "choices": None}]
    config["images"][1]["gpus"] = 1
    config["hub"]["data_dir"] = str(tmp_path / "data")
    config["spawner"]["gpus"] = 1
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))

    def hub(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hub", "--config", str(path), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)

    expected = "image cuda asks for GPUs, but Docker on this host has no NVIDIA runtime (its runtimes: "
    checked = hub("check-config")
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert expected in checked.stderr and "nvidia-ctk runtime configure --runtime=docker" in checked.stderr

    served = hub("serve")
    assert served.returncode == 2, served.stdout + served.stderr
    assert expected in served.stderr
    assert "Traceback" not in served.stderr

    # without the GPU image, the same configuration is fine
    config["images"] = [sized_echo]
    path.write_text(yaml.safe_dump(config))
    assert hub("check-config").returncode == 0
