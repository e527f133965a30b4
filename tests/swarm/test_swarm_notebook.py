"""JupyterLab in Chromium with ``spawner.backend: swarm``: log in, start, run a cell, through Traefik."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.e2e.test_login_spawn_notebook import run_first_cell
from tests.fixtures.hub import HubFactory

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
PASSWORD = "swarm-password"


def test_a_notebook_cell_runs_in_a_swarm_service(
    hub_factory: HubFactory, swarm: str, jupyterlab_image: str, page: Page
) -> None:
    images = [{"name": "jupyterlab", "display_name": "JupyterLab", "image": jupyterlab_image, "mem_limit": "1g"}]
    hub = hub_factory(
        auth={"type": "dummy", "dummy_password": PASSWORD},
        images=images,
        spawner={"backend": "swarm", "network": swarm},
    )
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "frank")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("#start")
    page.click("button#start")
    page.wait_for_url(re.compile(r"/user/frank/lab"), timeout=120_000)
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(page, "import socket; socket.gethostname()[:12] != ''", "True")
