"""The core loop in a real browser: log in, pick JupyterLab, watch the progress, run a cell."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


def log_in(page: Page, hub: HubProcess, name: str, password: str | None = None) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password or password_of(name))
    page.click("button[type=submit]")


def type_into_first_cell(page: Page, code: str) -> None:
    """Type into the first cell and check the editor took it (keys sent while it settles can be lost)."""
    editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    for _ in range(5):
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.type(code)
        try:
            expect(editor).to_have_text(code, timeout=3_000)
            return
        except AssertionError:
            continue
    expect(editor).to_have_text(code)


def run_first_cell(page: Page, code: str, expected: str) -> None:
    """Run the first cell and read its output. The kernel may attach a moment after the page says idle,
    and a cell run before that is silently dropped by JupyterLab, so the run is retried."""
    type_into_first_cell(page, code)
    cell = page.locator(".jp-Notebook .jp-Cell").first
    output = cell.locator(".jp-OutputArea-output")
    for _ in range(4):
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        try:
            expect(output).to_have_text(expected, timeout=15_000)
            return
        except AssertionError:
            continue
    expect(output).to_have_text(expected)


def test_alice_lands_in_her_jupyterlab_and_runs_a_cell(hub: HubProcess, page: Page) -> None:
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url) if frame == page.main_frame else None)

    log_in(page, hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    page.click("#start")
    expect(page.locator("input[name=image][value=jupyterlab]")).to_be_checked()
    expect(page.locator(".image-card", has_text="JupyterLab")).to_contain_text("Memory 1g")
    page.click("button#start")

    page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=120_000)
    assert any(url.endswith("/hub/spawn-pending/alice") for url in visited), visited

    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(page, "1+1", "2")


def test_progress_page_shows_the_steps_and_reattaches_after_reload(hub: HubProcess, page: Page) -> None:
    log_in(page, hub, "bob")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("input[name=image][value=jupyterlab]")
    with page.expect_navigation(url=re.compile(r"/hub/spawn-pending/bob")):
        page.click("button#start")
    page.reload()  # reattaches to the start in flight, or goes on to the ready server
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=120_000)
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator(".status")).to_have_attribute("data-state", "running")
    page.click("#stop")
    expect(page.locator(".status")).to_have_attribute("data-state", "stopped")


def test_bad_password_shows_an_error(hub: HubProcess, page: Page) -> None:
    log_in(page, hub, "alice", "not her password")
    expect(page.get_by_role("alert")).to_have_text("Invalid user name or password.")
    expect(page).to_have_url(re.compile(r"/hub/login"))


def test_unusable_user_name_is_explained(hub: HubProcess, page: Page) -> None:
    log_in(page, hub, "../etc/passwd", "whatever")
    expect(page.get_by_role("alert")).to_contain_text("cannot be used as a user name")


def test_tampered_image_choice_is_refused_and_starts_nothing(hub: HubProcess, page: Page, docker_client) -> None:
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/spawn")
    page.eval_on_selector("input[name=image][value=jupyterlab]", "el => { el.value = 'evil/image:latest'; }")
    page.click("button#start")
    expect(page.get_by_role("alert")).to_contain_text("is not offered on this hub")
    assert page.title().startswith("Unknown image")
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-admin"})
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator(".status")).to_have_attribute("data-state", "stopped")
