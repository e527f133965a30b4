"""Announcements and branding in Chromium: an admin announces in the panel, a student sees it on her home and
progress pages until it is removed; the hub carries its configured name, colour, logo, login message and an
admin's own login template."""

from __future__ import annotations

import re
from pathlib import Path

import docker
import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.client import wait_for
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f0000010101005d0a2db40000000049454e44ae426082"
)
MESSAGE = "The hub goes down on Friday at 18:00 <for updates>. Details: [the plan](https://example.org/plan)"


def branding_files(folder: Path) -> dict[str, object]:
    (folder / "logo.png").write_bytes(PNG)
    (folder / "templates").mkdir()
    (folder / "templates" / "login.html").write_text(
        '{% extends "hub/login.html" %}\n'
        '{% block main %}<p class="notice" id="local-note">Physics students: log in with your lab account.</p>'
        "{{ super() }}{% endblock %}\n"
    )
    return {
        "name": "Physics Lab",
        "logo": str(folder / "logo.png"),
        "main_colour": "#8a1538",
        "login_message": "Questions? Write to https://example.org/help.",
        "template_paths": [str(folder / "templates")],
    }


def test_an_announcement_reaches_a_student_on_a_branded_hub(
    hub_factory: HubFactory,
    base_image: str,
    browser: Browser,
    page: Page,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    slow = {  # never answers: its start stays on the progress page until it is stopped
        "name": "slow",
        "display_name": "Slow",
        "image": base_image,
        "jupyter": False,
        "command": ["sleep", "600"],
        "port": 8000,
        "volume_mount": "/data",
    }
    hub = hub_factory(images=[slow], branding=branding_files(tmp_path))
    hub.add_user("admin", password_of("admin"), admin=True)
    hub.add_user("alice", password_of("alice"))

    # The branded login page: name, logo, colour, message and the admin's own template around the hub's form.
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{hub.url}/hub/login")
    expect(page).to_have_title("Log in · Physics Lab")
    expect(page.get_by_test_id("hub-name")).to_have_text("Physics Lab")
    assert page.locator("header img.logo").evaluate("image => image.complete && image.naturalWidth") == 1
    expect(page.locator("#local-note")).to_have_text("Physics students: log in with your lab account.")
    expect(page.locator("#login-message a")).to_have_attribute("href", "https://example.org/help")
    expect(page.locator("button[type=submit].primary")).to_have_css("background-color", "rgb(138, 21, 56)")

    # The admin announces in the panel.
    log_in(page, hub, "admin")
    page.click("#admin-link")
    page.click("#announcements-link")
    page.fill("textarea[name=text]", MESSAGE)
    page.fill("#ends-at", "2099-12-31T18:00")
    page.click("#add-announcement button[type=submit]")
    expect(page.locator("#flash")).to_have_text("The announcement is on every page now.")

    # The student sees it on her home page and on the progress page of a start.
    student = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        alice = student.new_page()
        log_in(alice, hub, "alice")
        expect(alice).to_have_url(re.compile(r"/hub/home$"))
        banner = alice.locator("#announcements .announcement")
        expect(banner).to_have_text("The hub goes down on Friday at 18:00 <for updates>. Details: the plan")
        expect(banner.locator("a")).to_have_attribute("href", "https://example.org/plan")
        alice.goto(f"{hub.url}/hub/spawn")
        alice.click("button#start")
        expect(alice).to_have_url(re.compile(r"/hub/spawn-pending/alice$"))
        expect(alice.locator("#progress-card")).to_be_visible()
        expect(alice.locator("#announcements")).to_contain_text("The hub goes down on Friday")

        # Removed in the panel, it is gone from her next page.
        page.locator("button.remove-announcement").click()  # a confirm() dialog, accepted
        expect(page.locator("#flash")).to_have_text("Removed the announcement.")
        alice.reload()
        expect(alice.locator("#progress-card")).to_be_visible()
        expect(alice.locator("#announcements")).to_have_count(0)
    finally:
        student.close()
        token = hub.token("admin")
        stopped = requests.delete(
            f"{hub.url}/hub/api/users/alice/server", headers={"Authorization": f"token {token}"}, timeout=60
        )
        assert stopped.status_code in (202, 204), stopped.text
        wait_for(
            lambda: not docker_client.containers.list(filters={"label": f"hub.prefix={hub.prefix}"}),
            60,
            "alice's server to stop",
        )
