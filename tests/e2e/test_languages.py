"""Languages in Chromium: a browser set to German gets the hub in German, from the login page on; the picker in
the footer switches to French and the choice stays for the next pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


def test_a_german_browser_gets_german_pages_and_the_picker_switches_to_french(
    hub_factory: HubFactory, browser: Browser
) -> None:
    hub = hub_factory()
    hub.add_user("alice", password_of("alice"))
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        page.get_by_label("Benutzername").fill("alice")
        page.get_by_label("Passwort").fill(password_of("alice"))
        page.get_by_role("button", name="Anmelden").click()
        expect(page).to_have_url(re.compile(r"/hub/home$"))
        expect(page.get_by_role("heading", name="Ihr Server")).to_be_visible()
        expect(page.get_by_role("link", name="Meinen Server starten")).to_be_visible()

        page.get_by_label("Sprache").select_option("fr")
        page.get_by_role("button", name="Sprache wechseln").click()
        expect(page).to_have_url(re.compile(r"/hub/home$"))
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("heading", name="Votre serveur")).to_be_visible()
        page.get_by_role("link", name="Jeton").click()
        expect(page.get_by_role("heading", name="Jetons d’API")).to_be_visible()
    finally:
        context.close()


def test_a_german_admin_reads_the_panels_messages_and_a_starts_progress_in_german(
    hub_factory: HubFactory, browser: Browser
) -> None:
    """Text made in Python reaches the page in the browser's language: a flash message after an admin action, the
    progress page of a start and the reason it failed (the names in them stay as they are)."""
    hub = hub_factory()
    hub.add_user("admin", password_of("admin"), admin=True)
    hub.add_user("bob", password_of("bob"))
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login")
        page.get_by_label("Benutzername").fill("admin")
        page.get_by_label("Passwort").fill(password_of("admin"))
        page.get_by_role("button", name="Anmelden").click()
        expect(page).to_have_url(re.compile(r"/hub/home$"))

        page.goto(f"{hub.url}/hub/admin")
        page.locator("tr[data-user=bob] button.toggle-admin").click()
        expect(page.locator("#flash")).to_have_text("bob ist jetzt Admin.")

        page.goto(f"{hub.url}/hub/spawn")
        page.check("input[name=image][value=broken]")
        with page.expect_response(re.compile(r"/hub/spawn-pending/admin$")) as pending:
            page.click("button#start")
        # the page as it arrived, before the failure reloads it: its first step in German
        assert "<li>Ihr Broken-Server wird gestartet</li>" in pending.value.text()
        expect(page.locator("#error-message")).to_have_text(
            "Ihr Server hat beim Start aufgehört (Exit-Code 3).", timeout=60_000
        )
        expect(page.get_by_role("heading", name="Ihr Server konnte nicht starten")).to_be_visible()
        expect(page.locator("#error-log")).to_contain_text("settings file is missing")
    finally:
        context.close()
