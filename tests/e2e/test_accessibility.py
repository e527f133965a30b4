"""Accessibility in a real browser: axe-core finds no serious fault on any hub page, and the keyboard alone
takes a person from the login page into their server.

axe-core is injected into each page by tests/fixtures/axe.py (the ``axe_context`` fixture and ``axe_faults``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.axe import axe_faults
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def a11y_hub(hub_factory: HubFactory, test_images: list[dict[str, Any]]) -> HubProcess:
    """A hub with every optional admin page on (sign-ups, sharing), an image with a memory choice, usage
    sampled every second and an announcement; users alice, bob and carol (the keyboard test's) and admin."""
    echo = next(image for image in test_images if image["name"] == "echo")
    sized = {key: value for key, value in echo.items() if key != "mem_limit"}
    sized |= {"name": "sized", "display_name": "Sized Echo", "choices": {"mem_limit": {"options": ["256m", "512m"]}}}
    instance = hub_factory(
        images=[*test_images, sized],
        auth={"methods": [{"type": "native", "allow_signup": True}], "admin_users": ["admin"]},
        sharing={"enabled": True},
        usage={"sample_seconds": 1},
    )
    for name in ("alice", "bob", "carol", "admin"):
        instance.add_user(name, password_of(name), admin=name == "admin")
    announced = requests.post(
        f"{instance.url}/hub/api/announcements",
        json={"text": "The hub goes down on Friday, see https://example.org/maintenance"},
        headers={"Authorization": f"token {instance.token('admin')}"},
        timeout=30,
    )
    assert announced.status_code == 201, announced.text
    return instance


class Audit:
    """Collects axe's findings page by page, so one run names every fault at once."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.found: dict[str, list[dict[str, Any]]] = {}

    def check(self, name: str, url: str | None = None, status: int | None = 200) -> None:
        """Run axe on url (or on the page as it is), after checking the page answered with status."""
        if url is not None:
            response = self.page.goto(url)
            assert response is not None
            if status is not None:
                assert response.status == status, f"{name}: {url} answered {response.status}"
        self.page.wait_for_load_state("load")
        self.found[name] = axe_faults(self.page)

    def blocking(self) -> str:
        """The serious and critical faults, one a line (every fault, of any impact, is printed for the log)."""
        lines = []
        for name, faults in self.found.items():
            print(f"axe checked {name}: {len(faults)} fault(s)")
            for fault in faults:
                line = f"{name}: {fault['id']} ({fault['impact']}): {fault['help']} at {'; '.join(fault['nodes'])}"
                print(f"axe {line}")
                if fault["impact"] in BLOCKING:
                    lines.append(line)
        return "\n".join(lines)


def wait_for_state(page: Page, hub: HubProcess, state: str) -> None:
    """Reload the home page until it shows the server in state."""
    for _ in range(120):
        page.goto(f"{hub.url}/hub/home")
        if page.locator(f'.status[data-state="{state}"]').count():
            return
        page.wait_for_timeout(500)
    expect(page.locator(".status")).to_have_attribute("data-state", state)


def test_every_hub_page_passes_axe(a11y_hub: HubProcess, axe_context: BrowserContext) -> None:
    hub = a11y_hub
    page = axe_context.new_page()
    audit = Audit(page)
    base = f"{hub.url}/hub"

    audit.check("login", f"{base}/login")
    # axe itself works here: a field without a label, slipped into the page, is a critical fault.
    page.evaluate("() => document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=axe-probe>')")
    assert "label" in [fault["id"] for fault in axe_faults(page)]
    page.evaluate("() => document.getElementById('axe-probe').remove()")
    audit.check("sign-up", f"{base}/signup")
    page.fill("input[name=username]", "frank")
    page.fill("input[name=password]", password_of("frank"))
    page.fill("input[name=password_again]", password_of("frank"))
    page.click("button[type=submit]")
    audit.check("sign-up status", status=None)  # a request now waits in the admin's sign-up list
    log_in(page, hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    audit.check("home, server stopped", f"{base}/home")
    expect(page.locator("#announcements")).to_contain_text("The hub goes down on Friday")  # axe reads it too
    audit.check("spawn form", f"{base}/spawn")
    expect(page.locator(".image-card[data-image=sized] select[name=mem_limit]")).to_have_count(1)
    audit.check("token page", f"{base}/token")
    audit.check("change password", f"{base}/change-password")
    audit.check("error 404", f"{base}/no-such-page", status=404)

    # The progress page during a start: its event stream is held back so the page stays put while axe reads it.
    page.route("**/server/progress", lambda route: route.abort())
    page.goto(f"{base}/spawn")
    page.check("input[name=image][value=echo]")
    with page.expect_navigation(url=re.compile(r"/hub/spawn-pending/alice$")):
        page.click("button#start")
    expect(page.locator("#progress-card")).to_be_visible()
    audit.check("progress page")
    page.unroute("**/server/progress")
    wait_for_state(page, hub, "running")
    audit.check("home, server running")
    page.fill("#new-server input[name=server]", "extra")
    page.click("#add-server")
    page.wait_for_load_state("load")
    audit.check("home with a named server", f"{base}/home")
    audit.check("share page", f"{base}/share/alice")

    # A failed start: the progress page turns into the error page with the server's last log lines.
    axe_context.clear_cookies()
    log_in(page, hub, "bob")
    page.goto(f"{base}/spawn")
    page.check("input[name=image][value=broken]")
    page.click("button#start")
    expect(page.locator("#error-message")).to_be_visible(timeout=90_000)
    audit.check("error page, failed start")
    audit.check("server not running", f"{hub.url}/user/bob/", status=503)
    audit.check("log out", f"{base}/logout")

    axe_context.clear_cookies()
    log_in(page, hub, "admin")
    audit.check("admin panel", f"{base}/admin")
    audit.check("admin log page", f"{base}/admin/users/alice/log")
    audit.check("admin stop-all confirmation", f"{base}/admin/stop-all")
    audit.check("admin password reset confirmation", f"{base}/admin/users/bob/password")
    page.goto(f"{base}/admin")
    page.fill("textarea[name=usernames]", "dave")
    page.click("#add-users button[type=submit]")
    expect(page.locator("#added")).to_be_visible()
    audit.check("admin users added")
    audit.check("admin delete confirmation", f"{base}/admin/users/bob/delete")
    audit.check("admin groups", f"{base}/admin/groups")
    page.fill("input[name=name]", "physics")
    with page.expect_navigation():
        page.locator("input[name=name]").press("Enter")
    audit.check("admin group page", f"{base}/admin/groups/physics")
    audit.check("admin sign-ups", f"{base}/admin/signups")
    audit.check("admin shares", f"{base}/admin/shares")
    audit.check("admin bulk actions", f"{base}/admin/bulk")
    audit.check("admin usage", f"{base}/admin/usage")
    audit.check("admin announcements", f"{base}/admin/announcements")
    audit.check("admin import", f"{base}/admin/import")
    page.fill("#import-text", "name,groups,admin\nerin,physics,no\n")
    with page.expect_navigation():
        page.click("#import-preview")
    audit.check("admin import preview")
    page.goto(f"{base}/admin")
    page.check('input[name=users][value="alice"]')
    with page.expect_navigation():
        page.click("#bulk-stop")
    expect(page.locator("#bulk-affected")).to_contain_text("alice")
    audit.check("admin bulk confirmation")

    german = axe_context.new_page()  # a translated page: its lang attribute and labels follow the language
    german.set_extra_http_headers({"Accept-Language": "de"})
    audit.page = german
    audit.check("admin panel in German", f"{base}/admin")
    expect(german.locator("html")).to_have_attribute("lang", "de")

    problems = audit.blocking()
    assert not problems, f"axe-core found serious or critical faults:\n{problems}"


def focus_ring(page: Page, around: str = "") -> str:
    """The outline hub.css draws around the focused element (or its closest `around` ancestor): '' for none.
    Chromium's own ring is style "auto"; the hub's is "solid", so this reads the hub's style, not the browser's."""
    style: str = page.evaluate(
        """(around) => {
          const el = around ? document.activeElement.closest(around) : document.activeElement;
          const own = getComputedStyle(el);
          return own.outlineStyle === "solid" && parseFloat(own.outlineWidth) >= 2 ? own.outline : "";
        }""",
        around,
    )
    return style


def focused(page: Page) -> str:
    """A short description of the focused element: tag, name or id, and text."""
    description: str = page.evaluate(
        """() => {
          const el = document.activeElement;
          return [el.tagName.toLowerCase(), el.getAttribute("name") || "", el.id || "",
                  el.getAttribute("value") || "", (el.textContent || "").trim().slice(0, 40)].join("|");
        }"""
    )
    return description


def tab_to(page: Page, selector: str, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab until the element matching selector has the focus; fail when it never gets it."""
    seen = []
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press(key)
        seen.append(focused(page))
    raise AssertionError(f"{key} never reached {selector}; the focus went through {seen}")


def test_the_keyboard_alone_goes_from_login_to_jupyterlab(a11y_hub: HubProcess, page: Page) -> None:
    page.goto(f"{a11y_hub.url}/hub/login")
    tab_to(page, "input[name=username]")
    page.keyboard.type("carol")
    tab_to(page, "input[name=password]")
    assert focus_ring(page), "the focused password field shows no focus ring"
    page.keyboard.type(password_of("carol"))
    tab_to(page, "button[type=submit]")
    assert focus_ring(page), "the focused Log in button shows no focus ring"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("username")).to_have_text("carol")

    tab_to(page, "a#start")
    assert focus_ring(page), "the focused Start link shows no focus ring"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/hub/spawn$"))

    # The image cards are one radio group: Tab enters it at the checked card, the arrow keys move the choice.
    tab_to(page, "input[name=image]")
    assert page.evaluate("() => document.activeElement.checked"), "Tab entered the image choice off its checked card"
    first = page.evaluate("() => document.activeElement.value")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.value") != first, "ArrowDown did not move to the next card"
    expect(page.locator("input[name=image]:checked")).not_to_have_value(first)
    for _ in range(8):
        if page.evaluate("() => document.activeElement.value") == "jupyterlab":
            break
        page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    expect(page.locator("input[name=image][value=jupyterlab]")).to_be_checked()
    assert focus_ring(page), "the focused image radio shows no focus ring"
    assert focus_ring(page, ".image-card"), "the card of the focused image shows no focus ring"
    tab_to(page, "button#start")
    assert focus_ring(page), "the focused Start button shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/user/carol/"), timeout=120_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
