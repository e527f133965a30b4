"""Groups in a real browser: an admin makes one in the panel; an image kept for it is offered to its members only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


@pytest.fixture(scope="module")
def groups_hub(hub_factory: HubFactory, test_images: list[dict[str, Any]]) -> HubProcess:
    """The test images and Echo again as "Physics Echo", kept for the group physics."""
    echo = next(image for image in test_images if image["name"] == "echo")
    kept = {**echo, "name": "physics-echo", "display_name": "Physics Echo", "allowed_groups": ["physics"]}
    instance = hub_factory(images=[*test_images, kept])
    for name in ("alice", "bob", "admin"):
        instance.add_user(name, password_of(name), admin=name == "admin")
    return instance


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another person's browser (its own cookies)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def test_an_image_kept_for_a_group_is_offered_to_its_members_only(
    groups_hub: HubProcess, page: Page, second_page: Page
) -> None:
    hub = groups_hub
    log_in(page, hub, "admin")
    page.click("#admin-link")
    page.click("#groups-link")
    expect(page).to_have_url(re.compile(r"/hub/admin/groups$"))
    page.fill("#create-group input[name=name]", "physics")
    page.click("#create-group button[type=submit]")
    expect(page.locator("#flash")).to_have_text("Created the group physics.")
    page.fill("#add-members textarea[name=usernames]", "alice")
    page.click("#add-members button[type=submit]")
    expect(page.locator("#flash")).to_have_text("Added alice to physics.")
    expect(page.locator('tr[data-user="alice"]')).to_have_count(1)
    page.click("#groups-link")
    expect(page.locator('tr[data-group="physics"] .count')).to_have_text("1")

    log_in(second_page, hub, "alice")
    second_page.goto(f"{hub.url}/hub/spawn")
    expect(second_page.locator(".image-card", has_text="Physics Echo")).to_have_count(1)

    page.context.clear_cookies()  # the admin's browser becomes bob's
    log_in(page, hub, "bob")
    page.goto(f"{hub.url}/hub/spawn")
    expect(page.locator(".image-card", has_text="Echo")).to_have_count(1)  # the open Echo only
    expect(page.locator(".image-card", has_text="Physics Echo")).to_have_count(0)
    page.locator("input[name=image]").first.evaluate("radio => { radio.value = 'physics-echo'; radio.checked = true }")
    page.click("#start")
    expect(page.locator("body")).to_contain_text("You may not start the image Physics Echo.")
    bob = requests.get(
        f"{hub.url}/hub/api/users/bob", headers={"Authorization": f"token {hub.token('admin')}"}, timeout=10
    )
    assert bob.json()["servers"] == {} and bob.json()["groups"] == []  # refused before anything started
