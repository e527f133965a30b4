"""The hub's own pages carry security headers, cannot be framed, and keep working under their policy."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess, password_of
from tests.fixtures.traefik import free_port

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def assert_secured(response: requests.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.url, response.status_code, name)
    policy = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy, (response.url, policy)
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "alice")
    assert user.login(password_of("alice")).url.endswith("/hub/home")
    return user


@pytest.mark.parametrize("path", ["/hub/login", "/hub/static/hub.css", "/hub/static/progress.js"])
def test_pages_for_visitors_carry_the_headers(hub: HubProcess, path: str) -> None:
    response = requests.get(f"{hub.url}{path}", timeout=30)
    assert response.status_code == 200
    assert_secured(response)


@pytest.mark.parametrize(
    "path, status",
    [
        ("/hub/home", 200),
        ("/hub/spawn", 200),
        ("/hub/token", 200),
        ("/hub/no-such-page", 404),
        ("/hub/admin", 403),
        ("/hub/api/user", 200),
        ("/hub/api/users/bob", 403),
        ("/hub/api/users/bob/server/progress", 403),
        ("/user/alice/", 503),
    ],
)
def test_pages_errors_and_json_carry_the_headers(alice: HubUser, path: str, status: int) -> None:
    response = alice.get(path, allow_redirects=False)
    assert response.status_code == status, (path, response.text[:200])
    assert_secured(response)


def test_redirects_and_refusals_carry_the_headers(hub: HubProcess) -> None:
    for response in (
        requests.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30),
        requests.post(f"{hub.url}/hub/login", data={"username": "x"}, allow_redirects=False, timeout=30),
        requests.get(f"{hub.url}/hub/api/users", timeout=30),
    ):
        assert response.status_code in (302, 303, 400, 401, 403), (response.url, response.status_code)
        assert_secured(response)


def test_forward_auth_answers_stay_bare(hub: HubProcess) -> None:
    """Forward-auth answers only Traefik; its answers carry none of the page headers."""
    response = requests.get(
        f"{hub.internal_url}/hub/forward-auth/alice",
        allow_redirects=False,
        timeout=30,
        headers={"X-Forwarded-Uri": "/user/alice/", "X-Forwarded-Method": "GET"},
    )
    assert response.status_code in (302, 401)
    assert not set(EXPECTED) & set(response.headers)
    assert "Content-Security-Policy" not in response.headers


@pytest.fixture
def framing_site(hub: HubProcess) -> Iterator[str]:
    """A page on another port of the same host that frames the hub's login page."""
    page = f'<!doctype html><title>framer</title><iframe id="hub" src="{hub.url}/hub/login"></iframe>'.encode()

    class Framer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Framer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_another_site_cannot_frame_the_login_page(page: Page, framing_site: str) -> None:
    page.goto(framing_site, wait_until="load")  # the load event waits for the frame, shown or refused
    page.wait_for_timeout(500)
    assert page.frame_locator("#hub").locator("input[name=password]").count() == 0


def watch_policy(page: Page) -> list[str]:
    """Messages in which the browser reports that it refused something because of the page's policy."""
    refused: list[str] = []

    def check(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", check)
    return refused


@pytest.mark.browser
def test_a_user_starts_a_server_under_the_policy(hub: HubProcess, page: Page) -> None:
    """Every page bob meets, the progress page's script and event stream included, stays within its policy."""
    refused = watch_policy(page)
    log_in(page, hub, "bob")
    expect(page.get_by_test_id("username")).to_have_text("bob")
    page.goto(f"{hub.url}/hub/token")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("input[name=image][value=echo]")
    with page.expect_navigation(url=re.compile(r"/hub/spawn-pending/bob")):
        page.click("button#start")
    page.wait_for_url(re.compile(r"/user/bob/$"), timeout=60_000)  # moved on by progress.js
    assert refused == []


@pytest.mark.browser
def test_the_admin_is_still_asked_before_stopping_a_server(hub: HubProcess, page: Page) -> None:
    """The confirm question comes from a script file now, not an inline handler the policy would block."""
    refused = watch_policy(page)
    bob = HubUser(hub.url, "bob")
    bob.login(password_of("bob"))
    if bob.last_progress_event().get("ready") is not True:
        assert bob.start("echo").get("ready") is True
    questions: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    log_in(page, hub, "admin")
    page.goto(f"{hub.url}/hub/admin")
    bobs_row = page.locator('tr[data-user="bob"]')
    expect(bobs_row.locator(".state")).to_have_attribute("data-state", "running")
    bobs_row.locator("button.stop").click()
    page.wait_for_timeout(500)
    assert questions == ["Stop the server of bob?"]
    expect(bobs_row.locator(".state")).to_have_attribute("data-state", "running")
    assert refused == []
    bob.stop()
