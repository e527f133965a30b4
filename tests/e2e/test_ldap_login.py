"""LDAP login through a real hub and a real Chromium, against a real slapd started for this module."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, HubProcess
from tests.fixtures.slapd import GROUPS, PEOPLE, READER_DN, READER_PASSWORD, SlapdServer, password_of, start_slapd

pytestmark = [pytest.mark.traefik, pytest.mark.browser]


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    """This module's own directory: the last test stops it."""
    server = start_slapd(tmp_path_factory.mktemp("slapd") / "data")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def ldap_method(server: SlapdServer, **options: Any) -> dict[str, Any]:
    return {"type": "ldap", "server_address": "127.0.0.1", "ca_file": server.ca_file, "timeout": 2, **options}


@pytest.fixture(scope="module")
def ldap_hub(hub_factory: HubFactory, directory: SlapdServer) -> HubProcess:
    """Search-then-bind over StartTLS, groups from a group search; researchers may log in, hub-admins administer."""
    method = ldap_method(
        directory,
        server_port=directory.port,
        display_name="Example directory",
        lookup_dn=True,
        lookup_dn_search_user=READER_DN,
        lookup_dn_search_password=READER_PASSWORD,
        user_search_base=PEOPLE,
        group_search_base=GROUPS,
        allowed_groups=["researchers"],
        admin_groups=["hub-admins"],
    )
    return hub_factory(auth={"methods": [method]})


def log_in(page: Page, hub: HubProcess, name: str, password: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_directory_user_logs_in_in_the_browser(ldap_hub: HubProcess, page: Page) -> None:
    log_in(page, ldap_hub, "alice", password_of("alice"))
    expect(page).to_have_url(re.compile(r"/hub/home"))
    expect(page.get_by_test_id("username")).to_have_text("alice")
    expect(page.locator("body")).not_to_contain_text("(admin)")


def test_a_user_outside_the_allowed_groups_is_told_why(ldap_hub: HubProcess, page: Page) -> None:
    log_in(page, ldap_hub, "carol", password_of("carol"))
    expect(page.get_by_role("alert")).to_contain_text("not in a group that may use this hub")
    expect(page).to_have_url(re.compile(r"/hub/login"))


def test_wrong_password_unknown_user_and_injection_are_refused(ldap_hub: HubProcess, page: Page) -> None:
    log_in(page, ldap_hub, "alice", password_of("bob"))
    expect(page.get_by_role("alert")).to_have_text("Invalid user name or password.")
    for name in ("nobody", "alice*", "*)(uid=*"):
        response = HubUser(ldap_hub.url, name).login(password_of("alice"))
        assert response.status_code in (400, 403), name
        assert "/hub/home" not in response.url


def test_admin_groups_make_an_admin(ldap_hub: HubProcess) -> None:
    bob = HubUser(ldap_hub.url, "bob")
    assert bob.login(password_of("bob")).url.endswith("/hub/home")
    assert "(admin)" in bob.get("/hub/home").text
    assert bob.get("/hub/admin").status_code == 200


def test_direct_bind_over_ldaps_with_member_of(hub_factory: HubFactory, directory: SlapdServer) -> None:
    method = ldap_method(
        directory,
        server_port=directory.ldaps_port,
        use_ssl=True,
        bind_dn_template=f"uid={{username}},{PEOPLE}",
        use_member_of=True,
        admin_groups=["hub-admins"],
    )
    hub = hub_factory(auth={"methods": [method]})
    bob = HubUser(hub.url, "bob")
    assert bob.login(password_of("bob")).url.endswith("/hub/home")
    assert "(admin)" in bob.get("/hub/home").text
    carol = HubUser(hub.url, "carol")  # no allowed_groups: every directory user may log in
    assert carol.login(password_of("carol")).url.endswith("/hub/home")
    assert "(admin)" not in carol.get("/hub/home").text
    assert HubUser(hub.url, "carol").login("").status_code in (400, 403)


def test_a_stopped_directory_gives_a_clear_message(ldap_hub: HubProcess, directory: SlapdServer, page: Page) -> None:
    directory.stop()
    try:
        log_in(page, ldap_hub, "alice", password_of("alice"))
        expect(page.locator("body")).to_contain_text("The directory cannot be reached right now", timeout=10_000)
        assert "LDAP ldap://127.0.0.1" in ldap_hub.log()
    finally:
        directory.start()
    log_in(page, ldap_hub, "alice", password_of("alice"))
    expect(page).to_have_url(re.compile(r"/hub/home"))
