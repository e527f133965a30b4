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
