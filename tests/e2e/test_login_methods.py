"""Several login methods on one hub, each account owned by one of them; and the login of a trusted front proxy."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, HubProcess

pytestmark = [pytest.mark.traefik]


def get_from(source: str, hub: HubProcess, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    """GET through Traefik from another loopback address (another machine, as far as the hub can tell)."""
    where = urlsplit(hub.url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace"), response.getheader("Location") or ""
    finally:
        connection.close()


def test_a_front_proxy_names_the_user_and_nobody_else_can(hub_factory: HubFactory) -> None:
    hub = hub_factory(
        auth={
            "methods": [
                {
                    "type": "header",
                    "name": "campus",
                    "display_name": "Campus login",
                    "header_name": "X-Remote-User",
                    "trusted_addresses": ["127.0.0.1"],
                    "groups_header": "X-Remote-Groups",
                    "admin_groups": ["it-staff"],
                }
            ]
        }
    )
    login = "/hub/header_login?method=campus&next=/hub/home"
    # The front proxy (this test, from 127.0.0.1) sets the header: the person is logged in, an admin by group.
    status, _, location = get_from("127.0.0.1", hub, login, {"X-Remote-User": "Ada", "X-Remote-Groups": "it-staff"})
    assert (status, location) == (302, "/hub/home")
    # Someone else, from another address, sends the same header (and a forged X-Forwarded-For): refused.
    forged = {"X-Remote-User": "ada", "X-Forwarded-For": "127.0.0.1"}
    status, body, _ = get_from("127.0.0.2", hub, login, forged)
    assert status == 403
    assert "only works through your institution&#39;s login page" in body or "institution's login page" in body
    # The front proxy's request without a user name logs nobody in.
    status, body, _ = get_from("127.0.0.1", hub, login, {})
    assert status == 403 and "did not say who you are" in body
    listing = hub.cli("user", "list").stdout
    assert "ada" in listing and listing.count("\n") == 1, listing
    assert "Campus login" in HubUser(hub.url, "x").get("/hub/login").text


def test_guests_and_staff_log_in_side_by_side_and_one_name_has_one_owner(hub_factory: HubFactory, page: Page) -> None:
    hub = hub_factory(
        auth={
            "methods": [
                {"type": "dummy", "name": "staff", "display_name": "Staff login", "password": "staff-secret-1"},
                {"type": "native", "name": "guests", "display_name": "Guest accounts"},
            ]
        }
    )
    result = hub.cli("user", "add", "lecturer", "--method", "guests", "--password-stdin", stdin="guest-password-1\n")
    assert result.returncode == 0, result.stderr
    page.goto(f"{hub.url}/hub/login")
    expect(page.get_by_role("heading", name="Staff login")).to_be_visible()
    expect(page.get_by_role("heading", name="Guest accounts")).to_be_visible()
    guests = page.locator("form[data-method=guests]")
    guests.locator("input[name=username]").fill("lecturer")
    guests.locator("input[name=password]").fill("guest-password-1")
    guests.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/hub/home"))
    expect(page.get_by_test_id("username")).to_have_text("lecturer")

    # The staff method accepts any name with its password, but "lecturer" belongs to the guest method.
    page.context.clear_cookies()
    page.goto(f"{hub.url}/hub/login")
    staff = page.locator("form[data-method=staff]")
    staff.locator("input[name=username]").fill("lecturer")
    staff.locator("input[name=password]").fill("staff-secret-1")
    staff.locator("button[type=submit]").click()
    expect(page.get_by_role("alert")).to_contain_text("belongs to an account that logs in another way with Guest")
    # ... and the guest password does not open a staff account either.
    hub_user = HubUser(hub.url, "staffer")
    assert hub_user.login("staff-secret-1").url.endswith("/hub/home")
    other = HubUser(hub.url, "staffer")
    response = other.post_form(
        "/hub/login",
        {"username": "staffer", "password": "guest-password-1", "method": "guests"},
        xsrf_from="/hub/login",
    )
    assert response.status_code == 403 and "Invalid user name or password." in response.text
