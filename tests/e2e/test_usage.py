"""Usage pictures with real Docker: the hub samples a running server's stats every second; the admin's usage page
shows it among the heaviest and draws the servers running, and the owner's home page shows CPU and memory
against the server's limits (the last reading at once, then a fresh one its script asks for, in Chromium)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.client import HubUser, wait_for
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
LINE = r"CPU ([0-9.]+ % of 0\.5 cores|not measured yet) · Memory [0-9.]+ (kB|MB) of 256 MB"


def test_the_admin_sees_a_running_server_among_the_heaviest_and_the_owner_sees_it_on_home(
    hub_factory: HubFactory, test_images: list[dict[str, Any]], page: Page
) -> None:
    echo = next(image for image in test_images if image["name"] == "echo")
    hub = hub_factory(images=[{**echo, "cpu_limit": 0.5}], usage={"sample_seconds": 1})
    for name in ("alice", "admin"):
        hub.add_user(name, password_of(name), admin=name == "admin")
    alice, admin = HubUser(hub.url, "alice"), HubUser(hub.url, "admin")
    assert alice.login(password_of("alice")).url.endswith("/hub/home")
    assert admin.login(password_of("admin")).url.endswith("/hub/home")
    assert alice.get("/hub/admin/usage").status_code == 403
    assert alice.start("echo").get("ready") is True

    def heaviest_has_alice() -> tuple[str, re.Match[str]] | None:
        page = admin.get("/hub/admin/usage?period=hour").text
        row = re.search(r'<tr data-server="alice"><td>alice</td><td>([^<]+)</td><td>([^<]+)</td>', page)
        return (page, row) if row and "%" in row.group(1) else None  # the first read may be too soon for CPU

    usage_page, row = wait_for(heaviest_has_alice, 30, "alice's server measured among the heaviest on the usage page")
    assert re.fullmatch(r"[0-9.]+ % of one core \(limit 0\.5 cores\)", row.group(1)), row.group(1)
    assert re.fullmatch(r"[0-9.]+ (kB|MB) of 256 MB", row.group(2)), row.group(2)
    running = usage_page[usage_page.index('id="running-chart"') :]
    running = running[: running.index("</svg>")]
    assert "<polyline" in running or "<circle" in running, running  # samples with one server running
    assert "1 start(s) ended in this period; 0 failed." in usage_page

    home = alice.get("/hub/home").text  # the sampler's last reading, shown at once
    line = re.search(r'<p class="usage" id="usage" data-src="/hub/home/usage">Now: <span id="usage-now">([^<]+)<', home)
    assert line, home
    assert re.fullmatch(LINE, line[1]), line[1]
    fresh = alice.get("/hub/home/usage").json()["usage"]  # what the page's script asks for
    assert re.fullmatch(LINE, fresh), fresh

    # In Chromium the page's script fills the line with a fresh reading after the page has loaded.
    log_in(page, hub, "alice")
    page.goto("about:blank")  # the home page log_in ends on also asks; its answer must not be the one caught below
    with page.expect_response(lambda response: response.url.endswith("/hub/home/usage")) as answered:
        page.goto(f"{hub.url}/hub/home")
    words = answered.value.json()["usage"]
    assert re.fullmatch(LINE, words), words
    expect(page.locator("#usage")).to_be_visible()
    expect(page.locator("#usage-now")).to_have_text(words)
    expect(page.locator("#usage")).to_have_text(re.compile(r"^Now: CPU .* · Memory .* of 256 MB$"))

    assert alice.stop().status_code == 200
