"""Accounts people look after themselves, in a real browser against a real hub behind Traefik."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


@pytest.fixture(scope="module")
def hub(hub_factory: HubFactory) -> HubProcess:
    """A hub whose built-in login takes sign-ups; users alice, bob and admin."""
    instance = hub_factory(
        auth={"methods": [{"type": "native", "allow_signup": True}], "admin_users": ["admin"]},
    )
    for name in ("alice", "bob", "admin"):
        instance.add_user(name, password_of(name), admin=name == "admin")
    return instance


def logged_in(user: HubUser) -> bool:
    return urlsplit(user.get("/hub/home").url).path == "/hub/home"


def test_a_user_changes_their_password_and_their_other_sessions_end(hub: HubProcess, page: Page) -> None:
    elsewhere = HubUser(hub.url, "alice")  # alice on another computer
    elsewhere.login(password_of("alice"))
    assert logged_in(elsewhere)
    log_in(page, hub, "alice")
    page.click("#change-password")
    page.fill("input[name=current_password]", password_of("alice"))
    page.fill("input[name=new_password]", "alice has a new password")
    page.fill("input[name=new_password_again]", "alice has a new password")
    page.click("#change-password-form button[type=submit]")
    expect(page.locator("#password-notice")).to_have_text(
        "Your password is changed. You were logged out everywhere else."
    )
    page.click("#continue")
    expect(page).to_have_url(re.compile(r"/hub/home$"))  # this browser stays logged in
    assert not logged_in(elsewhere)
    assert elsewhere.login(password_of("alice")).status_code == 403
    elsewhere.login("alice has a new password")
    assert logged_in(elsewhere)


def test_an_admin_resets_a_password_and_the_user_must_choose_a_new_one(
    hub: HubProcess, page: Page, browser: Browser
) -> None:
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin")
    page.locator('tr[data-user="bob"] a.reset-password').click()
    expect(page.locator("h1")).to_have_text("Reset the password of bob?")
    page.click("#confirm")
    temporary = page.locator("#temporary-password").inner_text()
    assert len(temporary) >= 16
    page.reload()  # shown once: reloading shows it no more (and does not reset it again)
    expect(page.locator("#shown-already")).to_be_visible()
    expect(page.locator("#temporary-password")).to_have_count(0)

    bob = browser.new_context()
    try:
        bobs_page = bob.new_page()
        log_in(bobs_page, hub, "bob", temporary)
        expect(bobs_page).to_have_url(re.compile(r"/hub/change-password"))
        expect(bobs_page.locator("#must-change")).to_have_text(
            "An admin reset your password: choose a new one to continue."
        )
        bobs_page.goto(f"{hub.url}/hub/home")  # nothing else until then
        expect(bobs_page).to_have_url(re.compile(r"/hub/change-password"))
        bobs_page.fill("input[name=current_password]", temporary)
        bobs_page.fill("input[name=new_password]", "bob chose this one")
        bobs_page.fill("input[name=new_password_again]", "bob chose this one")
        bobs_page.click("#change-password-form button[type=submit]")
        bobs_page.click("#continue")
        expect(bobs_page).to_have_url(re.compile(r"/hub/home$"))
        expect(bobs_page.get_by_test_id("username")).to_have_text("bob")
    finally:
        bob.close()


def test_someone_signs_up_waits_for_approval_and_then_logs_in(hub: HubProcess, page: Page, browser: Browser) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.click("text=Ask for an account")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password]", "newcomer's password")
    page.fill("input[name=password_again]", "newcomer's password")
    page.click("#signup-form button[type=submit]")
    expect(page.locator("#signup-state")).to_have_text("Your request is waiting for an admin's approval.")
    log_in(page, hub, "newcomer", "newcomer's password")
    expect(page.get_by_role("alert")).to_have_text("Your request is waiting for an admin's approval.")

    admin = browser.new_context()
    try:
        admins_page = admin.new_page()
        log_in(admins_page, hub, "admin")
        admins_page.goto(f"{hub.url}/hub/admin")
        admins_page.click("#signups-link")
        admins_page.locator('tr[data-request="newcomer"] button.approve').click()
        expect(admins_page.locator("#flash")).to_have_text("Approved: newcomer can log in now.")
    finally:
        admin.close()

    log_in(page, hub, "newcomer", "newcomer's password")
    expect(page).to_have_url(re.compile(r"/hub/home$"))
    expect(page.get_by_test_id("username")).to_have_text("newcomer")
