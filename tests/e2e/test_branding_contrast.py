"""A light main colour in Chromium: gold (#ffd700) buttons get black text, links and focus rings a dark gold, and
axe-core finds no colour-contrast fault on the pages that show the colour (hub/branding_config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from playwright.sync_api import BrowserContext, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.axe import axe_faults
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
GOLD, BLACK, DARK_GOLD = "rgb(255, 215, 0)", "rgb(0, 0, 0)", "rgb(130, 110, 0)"


def test_a_light_main_colour_keeps_every_text_readable(
    hub_factory: HubFactory, base_image: str, axe_context: BrowserContext, tmp_path: Path
) -> None:
    sleeper = {
        "name": "sleeper",
        "display_name": "Sleeper",
        "image": base_image,
        "jupyter": False,
        "command": ["sleep", "600"],
        "port": 8000,
        "volume_mount": "/data",
    }
    branding = {"main_colour": "#ffd700", "login_message": "Questions? Write to https://example.org/help."}
    hub = hub_factory(images=[sleeper], branding=branding)
    hub.add_user("admin", password_of("admin"), admin=True)
    hub.add_user("alice", password_of("alice"))
    announced = requests.post(
        f"{hub.url}/hub/api/announcements",
        json={"text": "Maintenance on Friday, see https://example.org/maintenance"},
        headers={"Authorization": f"token {hub.token('admin')}"},
        timeout=30,
    )
    assert announced.status_code == 201, announced.text
    page = axe_context.new_page()
    found: dict[str, list[str]] = {}

    def contrast_faults(name: str, url: str | None = None) -> None:
        if url is not None:
            page.goto(url)
        page.wait_for_load_state("load")
        faults = [fault for fault in axe_faults(page) if fault["id"] == "color-contrast"]
        found[name] = [f"{fault['impact']}: {'; '.join(fault['nodes'])}" for fault in faults]

    page.goto(f"{hub.url}/hub/login")
    submit = page.locator("button[type=submit].primary")
    expect(submit).to_have_css("background-color", GOLD)
    expect(submit).to_have_css("color", BLACK)  # black on gold, not white
    expect(page.locator("#login-message a")).to_have_css("color", DARK_GOLD)  # a link in a shade that reads
    contrast_faults("login")

    log_in(page, hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    expect(page.locator("nav a").first).to_have_css("color", DARK_GOLD)
    expect(page.locator("#announcements a")).to_have_css("color", DARK_GOLD)
    contrast_faults("home", f"{hub.url}/hub/home")
    page.keyboard.press("Tab")  # the first link of the page: its focus ring is the dark gold too
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineColor")
    assert outline == DARK_GOLD, outline
    contrast_faults("spawn form", f"{hub.url}/hub/spawn")
    contrast_faults("token page", f"{hub.url}/hub/token")

    axe_context.clear_cookies()
    log_in(page, hub, "admin")
    expect(page.get_by_test_id("username")).to_contain_text("admin")
    contrast_faults("admin panel", f"{hub.url}/hub/admin")
    contrast_faults("admin announcements", f"{hub.url}/hub/admin/announcements")

    assert found.keys() == {"login", "home", "spawn form", "token page", "admin panel", "admin announcements"}
    faults = [f"{name}: {fault}" for name, items in found.items() for fault in items]
    assert not faults, "\n".join(faults)
