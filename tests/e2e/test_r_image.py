"""R next to Python: a hub offers images/r as a third card, and a person runs an R cell in it (real Docker,
real Traefik, real Chromium). The image is built from images/r on the local base image (several minutes the
first time; later runs reuse it by tag)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import log_in, run_first_cell
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def r_hub(hub_factory: HubFactory, jupyterlab_image: str, r_image: str, base_image: str) -> HubProcess:
    """A hub offering JupyterLab and R, with R built from images/r as the default config does (``build: r``)."""
    images = [
        {"name": "jupyterlab", "display_name": "JupyterLab", "image": jupyterlab_image, "mem_limit": "1g"},
        {
            "name": "r",
            "display_name": "R",
            "description": "JupyterLab with R and its kernel.",
            "image": r_image,
            "build": "r",
            "mem_limit": "1g",
        },
    ]
    spawner = {"images_dir": str(ROOT / "images"), "build_args": {"BASE_IMAGE": base_image}}
    hub = hub_factory(images=images, spawner=spawner)
    hub.add_user("alice", password_of("alice"))
    return hub


def test_alice_picks_r_and_runs_an_r_cell(r_hub: HubProcess, page: Page) -> None:
    log_in(page, r_hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    page.goto(f"{r_hub.url}/hub/spawn")
    expect(page.locator(".image-card[data-image=r]")).to_contain_text("JupyterLab with R and its kernel.")
    page.check("input[name=image][value=r]")
    page.click("button#start")
    page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=120_000)

    # The launcher offers R next to Python; its card opens a notebook on the R kernel.
    page.locator('.jp-LauncherCard[data-category="Notebook"][title="R"]').click(timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    expect(page.locator(".jp-NotebookPanel .jp-KernelName")).to_have_text("R", timeout=30_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(page, "cat(6 * 7)", "42")
