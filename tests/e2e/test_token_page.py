"""The token page in a real browser: make a token, see it once, use it, revoke it."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess

pytestmark = [pytest.mark.traefik, pytest.mark.browser]


def test_a_user_makes_uses_and_revokes_a_token(hub: HubProcess, page: Page) -> None:
    log_in(page, hub, "bob")
    page.click("text=Token")
    page.fill("input[name=note]", "my laptop script")
    page.select_option("select[name=expires_in]", "86400")
    page.click("#new-token-form button[type=submit]")
    token = page.locator("#new-token").inner_text().strip()
    assert len(token) > 30

    me = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.json()["name"] == "bob"
    page.goto(f"{hub.url}/hub/token")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once only
    listed = page.locator("#tokens tr", has_text="my laptop script")
    expect(listed).to_contain_text(token[:4])
    assert listed.locator("td").nth(4).inner_text() != "—"  # last used: just now
    listed.locator("button", has_text="Revoke").click()
    expect(page.locator("#tokens tr", has_text="my laptop script")).to_have_count(0)
    assert (
        requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30).status_code
        == 401
    )
