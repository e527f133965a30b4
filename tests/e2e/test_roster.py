"""Class lists and bulk actions in the admin panel, in a real browser against a real hub, Docker and Traefik."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.client import wait_for
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]

BAD_ROSTER = b"name,groups,admin\ncarol,physics,no\nDan Brown,physics,no\n"
GOOD_ROSTER = "name,groups,admin\ncarol,physics,no\ndan,physics maths,no\nbob,physics,\n"


def test_an_admin_imports_a_class_list_and_a_new_student_logs_in(
    hub: HubProcess, page: Page, browser: Browser, tmp_path: Path
) -> None:
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin")
    page.click("#import-link")
    page.set_input_files("#import-file", files=[{"name": "class.csv", "mimeType": "text/csv", "buffer": BAD_ROSTER}])
    page.click("#import-preview")
    expect(page.locator("#import-problems")).to_contain_text("line 3: name 'Dan Brown' has a space")
    expect(page.locator("#import-problems")).to_contain_text("Nothing was imported")

    page.fill("#import-text", GOOD_ROSTER)
    page.click("#import-preview")
    expect(page.locator("#import-summary")).to_have_text(
        "2 new users, 1 changed, 0 unchanged, 2 new groups. Nothing has changed yet."
    )
    expect(page.locator("#preview-changed tr[data-user=bob]")).to_contain_text("joins physics")
    expect(page.locator("#preview-new-groups")).to_have_text("New groups to create: physics, maths.")
    page.click("#import-apply")

    expect(page.locator("#import-done")).to_contain_text("2 new users")
    password = page.locator("#passwords tr[data-user=carol] code").inner_text()
    assert len(password) >= 16
    with page.expect_download() as download_info:
        page.click("#passwords-download")
    saved = tmp_path / "first-passwords.csv"
    download_info.value.save_as(saved)
    assert f"carol,{password}" in saved.read_text().splitlines()

    page.reload()  # the browser sends the form again: nothing new is made, no password shown again
    expect(page.locator("#import-done")).to_contain_text("0 new users, 0 changed, 3 unchanged")
    expect(page.locator("#passwords")).to_have_count(0)

    student = browser.new_context().new_page()
    try:
        log_in(student, hub, "carol", password)
        expect(student).to_have_url(re.compile(r"/hub/change-password"))
    finally:
        student.context.close()


def start_echo(hub: HubProcess, token: str, name: str) -> None:
    headers = {"Authorization": f"token {token}"}
    started = requests.post(
        f"{hub.url}/hub/api/users/{name}/server", json={"image": "echo"}, headers=headers, timeout=60
    )
    assert started.status_code in (201, 202), started.text

    def running() -> bool:
        model: dict[str, Any] = requests.get(f"{hub.url}/hub/api/users/{name}", headers=headers, timeout=30).json()
        return bool(model["server"]) and model["pending"] is None

    wait_for(running, 90, f"the server of {name}")


def test_an_admin_stops_two_running_servers_at_once(hub: HubProcess, page: Page, docker_client: Any) -> None:
    token = hub.token("admin")
    for name in ("alice", "bob"):
        start_echo(hub, token, name)
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin")
    expect(page.locator('tr[data-user="alice"] .state')).to_have_attribute("data-state", "running")

    page.check("#select-all")  # every user on the page; only alice and bob run a server
    expect(page.locator('tr[data-user="admin"] input[name=users]')).to_be_checked()
    page.click("#bulk-stop")
    expect(page.locator("h1")).to_have_text("Stop these servers?")
    expect(page.locator("#bulk-affected li")).to_have_count(2)
    expect(page.locator("#bulk-affected")).to_contain_text("alice: default server (running)")
    expect(page.locator("#bulk-affected")).to_contain_text("bob: default server (running)")
    expect(page.locator("#bulk-untouched")).to_contain_text("admin")
    page.click("#confirm")

    expect(page.locator("#flash")).to_contain_text("Stopped the servers of alice, bob.")
    for name in ("alice", "bob"):
        expect(page.locator(f'tr[data-user="{name}"] .state')).to_have_attribute("data-state", "stopped")
    left = docker_client.containers.list(all=True, filters={"label": f"hub.prefix={hub.prefix}"})
    assert left == [], [container.name for container in left]
