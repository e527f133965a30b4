"""The admin panel in a real browser."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-user="{name}"]')


def test_an_admin_runs_the_hub_from_the_panel(hub: HubProcess, page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, hub, "admin")
    page.click("#admin-link")
    expect(page).to_have_url(re.compile(r"/hub/admin$"))

    page.fill("textarea[name=usernames]", "carol\ndave, erin")
    page.click("#add-users button[type=submit]")
    expect(page.locator("#added")).to_have_text("Added carol, dave, erin.")
    expect(page.locator("#passwords tr", has_text="carol")).to_have_count(1)
    page.click("text=Back to the users")

    carol = row(page, "carol")
    carol.locator("select[name=image]").select_option("echo")
    carol.locator("button.start").click()
    expect(page.locator("#flash")).to_have_text("Starting Echo for carol.")
    for _ in range(60):
        if row(page, "carol").locator(".state").get_attribute("data-state") == "running":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(row(page, "carol").locator(".state")).to_have_attribute("data-state", "running")
    expect(row(page, "carol")).to_contain_text("echo")

    row(page, "carol").locator("text=Log").click()
    expect(page.locator("#server-log")).to_contain_text("echo server listening on 8000")
    page.go_back()

    row(page, "carol").locator("button.stop").click()  # a confirm() dialog, accepted
    expect(page.locator("#flash")).to_have_text("The server of carol is stopped.")
    expect(row(page, "carol").locator(".state")).to_have_attribute("data-state", "stopped")

    row(page, "dave").locator("button.toggle-admin").click()
    expect(page.locator("#flash")).to_have_text("dave is now an admin.")
    expect(row(page, "dave").locator("button.toggle-admin")).to_have_text("Revoke admin")

    row(page, "erin").locator("text=Delete").click()
    expect(page.locator("h1")).to_have_text("Delete erin?")
    page.check("#remove-volume")
    page.click("#confirm")
    expect(page.locator("#flash")).to_have_text("Deleted erin and their files.")
    expect(row(page, "erin")).to_have_count(0)


def test_the_panel_filters_sorts_and_pages(hub: HubProcess, page: Page) -> None:
    token = hub.token("admin")
    names = [f"student{number:03d}" for number in range(120)]
    created = requests.post(
        f"{hub.url}/hub/api/users", json={"usernames": names}, headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert created.status_code == 201
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin?filter=student")
    expect(page.locator("#total")).to_contain_text("120 user(s)")
    expect(page.locator("table.users tbody tr")).to_have_count(50)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 3")
    expect(page.locator("table.users tbody tr").first).to_have_attribute("data-user", "student000")
    page.click("a[rel=next]")
    expect(page.locator("table.users tbody tr").first).to_have_attribute("data-user", "student050")
    page.click('a[data-sort="name"]')  # back to page 1, sorted by name descending
    expect(page.locator("table.users tbody tr").first).to_have_attribute("data-user", "student119")
    page.fill("input[name=filter]", "student11")
    page.click("form[role=search] button")
    expect(page.locator("table.users tbody tr")).to_have_count(10)  # student110 to student119


def test_a_non_admin_gets_403_on_the_panel(hub: HubProcess, page: Page) -> None:
    log_in(page, hub, "alice")
    expect(page.locator("#admin-link")).to_have_count(0)
    response = page.goto(f"{hub.url}/hub/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_have_text("Only admins may use the admin panel.")
    assert requests.post(f"{hub.url}/hub/admin/users/bob/stop", timeout=30).status_code in (302, 403)
