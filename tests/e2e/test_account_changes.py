"""Account changes made with the CLI while the hub runs reach it within seconds (issue: a removed admin kept admin)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


def within_seconds(check: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


@pytest.fixture(scope="module")
def live_hub(hub_factory: HubFactory) -> HubProcess:
    hub = hub_factory(auth={"type": "native", "admin_users": []})
    for name, admin in (("boss", True), ("carol", False), ("dave", False)):
        hub.add_user(name, password_of(name), admin=admin)
    return hub


def api(hub: HubProcess, token: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(
        method, f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=30, **kwargs
    )  # type: ignore[arg-type]


def test_removing_a_logged_in_admin_with_the_cli_ends_their_cookies_and_tokens(live_hub: HubProcess) -> None:
    boss = HubUser(live_hub.url, "boss")
    assert boss.login(password_of("boss")).status_code == 200
    assert boss.get("/hub/admin", allow_redirects=False).status_code == 200
    token = live_hub.token("boss")
    assert api(live_hub, token, "GET", "/user").json()["admin"] is True

    removed = live_hub.cli("user", "remove", "boss")
    assert removed.returncode == 0, removed.stderr

    assert within_seconds(lambda: boss.get("/hub/admin", allow_redirects=False).status_code == 302)
    assert api(live_hub, token, "GET", "/user").status_code == 401
    made = api(live_hub, token, "POST", "/users", json={"usernames": ["mallory"], "admin": True})
    assert made.status_code == 401  # a removed admin cannot make a new admin
    assert "mallory" not in live_hub.cli("user", "list").stdout


def test_admin_rights_given_and_taken_with_the_cli_apply_at_once(live_hub: HubProcess) -> None:
    carol = HubUser(live_hub.url, "carol")
    carol.login(password_of("carol"))
    assert carol.get("/hub/admin", allow_redirects=False).status_code == 403
    assert live_hub.cli("user", "admin", "carol").returncode == 0
    assert within_seconds(lambda: carol.get("/hub/admin", allow_redirects=False).status_code == 200)
    token = live_hub.token("carol")
    assert api(live_hub, token, "GET", "/users").status_code == 200
    assert live_hub.cli("user", "admin", "carol", "--revoke").returncode == 0
    assert within_seconds(lambda: carol.get("/hub/admin", allow_redirects=False).status_code == 403)
    assert within_seconds(lambda: api(live_hub, token, "GET", "/users").status_code == 403)


def test_a_password_reset_with_the_cli_ends_the_other_sessions(live_hub: HubProcess) -> None:
    dave = HubUser(live_hub.url, "dave")
    dave.login(password_of("dave"))
    assert dave.get("/hub/home", allow_redirects=False).status_code == 200
    reset = live_hub.cli("user", "password", "dave", "--password-stdin", stdin="a whole new password\n")
    assert reset.returncode == 0, reset.stderr
    assert within_seconds(lambda: dave.get("/hub/home", allow_redirects=False).status_code == 302)
    again = HubUser(live_hub.url, "dave")
    assert "Invalid user name or password" in again.login(password_of("dave")).text
    assert again.login("a whole new password").url.endswith("/hub/home")
