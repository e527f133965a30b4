"""Sharing a server for real, in Chromium: alice shares her JupyterLab with bob; bob opens it from his home page
and runs a cell in her notebook; carol cannot get in; after alice revokes the share bob cannot either, and his
open kernel connection is closed by the hub."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in, run_first_cell
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


class SocketWatch:
    """Every WebSocket a page opens, and when each closed."""

    def __init__(self, page: Page) -> None:
        self.opened: list[WebSocket] = []
        self.closed: dict[str, float] = {}
        page.on("websocket", self.track)

    def track(self, socket: WebSocket) -> None:
        self.opened.append(socket)
        socket.on("close", lambda closed: self.closed.setdefault(closed.url, time.monotonic()))

    def kernel_sockets(self) -> list[WebSocket]:
        return [socket for socket in self.opened if re.search(r"/api/kernels/[^/]+/channels", socket.url)]


@pytest.fixture(scope="module")
def hub(hub_factory: HubFactory) -> HubProcess:
    """A hub with sharing on (it is off by default) and native users alice, bob and admin."""
    instance = hub_factory(sharing={"enabled": True})
    for name in ("alice", "bob", "admin"):
        instance.add_user(name, password_of(name), admin=name == "admin")
    return instance


def new_page(browser: Browser, hub: HubProcess, name: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    log_in(page, hub, name)
    expect(page.get_by_test_id("username")).to_have_text(name)
    return page


def test_alice_shares_her_server_with_bob_until_she_revokes_it(hub: HubProcess, browser: Browser) -> None:
    hub.add_user("carol", password_of("carol"))
    alice = HubUser(hub.url, "alice")
    assert alice.login(password_of("alice")).url.endswith("/hub/home")
    assert alice.start("jupyterlab").get("ready") is True

    # alice shares her server with bob from her home page
    alice_page = new_page(browser, hub, "alice")
    alice_page.click("#share")
    expect(alice_page.locator("#no-shares")).to_be_visible()
    alice_page.fill("#share-name", "bob")
    alice_page.click("#share-submit")
    expect(alice_page.locator("#flash")).to_have_text("Shared with user bob.")
    expect(alice_page.locator("tr[data-grantee=bob] .until")).to_have_text("until revoked")

    # bob finds it on his home page, opens it and runs a cell in her notebook
    bob_page = new_page(browser, hub, "bob")
    sockets = SocketWatch(bob_page)
    shared = bob_page.locator("#shared-with-me tr[data-owner=alice]")
    expect(shared.locator(".state")).to_have_attribute("data-state", "running")
    shared.locator("a.open-shared").click()
    bob_page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=60_000)
    bob_page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=60_000)
    bob_page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    bob_page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(bob_page, "6*7", "42")
    kernels: list[dict[str, Any]] = alice.get("/user/alice/api/kernels").json()
    assert kernels, "the kernel bob runs is one of alice's server's kernels"
    live = [socket for socket in sockets.kernel_sockets() if socket.url not in sockets.closed]
    assert live, [socket.url for socket in sockets.opened]
    assert "relaying a WebSocket of bob to /user/alice/api/kernels/" in hub.log()  # through the hub, not around it

    # carol has no share: not through the hub's pages, not at the server's address
    carol = HubUser(hub.url, "carol")
    assert carol.login(password_of("carol")).url.endswith("/hub/home")
    assert "Shared with me" not in carol.get("/hub/home").text
    for path in ("/user/alice/lab", "/user/alice/api/status", "/hub/shared/alice"):
        code, _, _ = carol.raw_get(path)
        assert code == 403, path
    assert carol.get("/hub/share/alice").status_code == 403  # nor manage alice's sharing

    # alice revokes: bob's open kernel connection is closed by the hub, and he cannot get back in
    alice_page.locator("tr[data-grantee=bob] button.revoke").click()
    revoked_at = time.monotonic()
    expect(alice_page.locator("#no-shares")).to_be_visible()
    deadline = revoked_at + 10
    while not all(socket.url in sockets.closed for socket in live) and time.monotonic() < deadline:
        bob_page.wait_for_timeout(50)
    assert all(socket.url in sockets.closed for socket in live), "bob's kernel connection stayed open"
    assert max(sockets.closed[socket.url] for socket in live) - revoked_at < 3  # the hub closes it at once
    assert bob_page.request.get(f"{hub.url}/user/alice/api/status").status == 403
    bob_page.goto(f"{hub.url}/hub/home")
    expect(bob_page.locator("#shared-with-me")).to_have_count(0)
    assert "closing a shared WebSocket of bob to alice/" in hub.log()
