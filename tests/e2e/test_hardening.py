"""The review's findings, each shown against a real hub behind a real Traefik with real containers."""

from __future__ import annotations

import json
import re
import stat
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


@pytest.fixture(scope="module")
def hub(hub_factory: HubFactory) -> HubProcess:
    hub = hub_factory(auth={"type": "native", "admin_users": ["admin"], "server_access_accounts": ["grader"]})
    for name in ("alice", "admin", "victim"):
        hub.add_user(name, password_of(name), admin=name == "admin")
    return hub


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "alice")
    user.login(password_of("alice"))
    assert user.start("echo").get("ready") is True
    return user


def seen_by_server(user_or_token: HubUser | str, hub: HubProcess, path: str = "/user/alice/x") -> tuple[int, dict]:
    if isinstance(user_or_token, HubUser):
        status, body, _ = user_or_token.raw_get(path)
    else:
        response = requests.get(hub.url + path, headers={"Authorization": f"token {user_or_token}"}, timeout=30)
        status, body = response.status_code, response.text
    return status, (json.loads(body) if status == 200 else {})


def test_admins_cannot_reach_a_server_without_admin_access_but_a_named_service_can(
    hub: HubProcess, alice: HubUser
) -> None:
    admin_token = hub.token("admin")
    minted = requests.post(
        f"{hub.url}/hub/api/users/alice/tokens",
        json={"note": "let me in"},
        headers={"Authorization": f"token {admin_token}"},
        timeout=30,
    )
    assert minted.status_code == 403  # the way in that the review found
    assert seen_by_server(admin_token, hub)[0] == 403
    admin = HubUser(hub.url, "admin")
    admin.login(password_of("admin"))
    assert seen_by_server(admin, hub)[0] == 403

    created = hub.cli("token", "create", "grader", "--service")
    assert created.returncode == 0, created.stderr
    status, seen = seen_by_server(created.stdout.strip(), hub)
    assert status == 200 and seen["path"] == "/user/alice/x"


def test_the_servers_token_is_in_no_file_and_not_in_traefiks_api(hub: HubProcess, alice: HubUser) -> None:
    status, seen = seen_by_server(alice, hub)
    assert status == 200
    secret = seen["headers"]["Authorization"].removeprefix("token ")
    assert len(secret) > 20
    route_files = list(hub.traefik.dynamic_dir.glob("*.yaml"))
    assert route_files and all(secret not in path.read_text() for path in route_files)
    for path in route_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    api = requests.get(f"{hub.traefik.api_url}/api/http/middlewares", timeout=10).text
    assert "alice" in api and secret not in api


def test_the_database_and_cookie_key_are_readable_by_the_hub_only(hub: HubProcess, alice: HubUser) -> None:
    data_dir = Path(yaml.safe_load(hub.config_path.read_text())["hub"]["data_dir"])
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in [data_dir / "cookie_secret", *data_dir.glob("hub.sqlite*")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_forty_guesses_at_once_are_stopped_at_the_limit(hub: HubProcess) -> None:
    def guess(number: int) -> int:
        return HubUser(hub.url, "victim").login(f"wrong guess {number}").status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(40)))
    assert statuses.count(403) <= 5, statuses  # checked and wrong
    assert statuses.count(429) >= 35, statuses  # refused without checking
    locked = HubUser(hub.url, "victim").login(password_of("victim"))
    assert locked.status_code == 429 and "Too many failed attempts" in locked.text
    assert HubUser(hub.url, "admin").login(password_of("admin")).url.endswith("/hub/home")  # others still log in


def test_nobody_can_forge_a_log_line(hub: HubProcess) -> None:
    forged = "\n2026-01-01 00:00:00,000 WARNING hub.first_admin: the setup link is evil.example"
    answer = requests.get(f"{hub.internal_url}/hub/api/users/{urllib.parse.quote(forged, safe='')}", timeout=10)
    assert answer.status_code == 401
    HubUser(hub.url, forged).login("whatever")
    lines = hub.log().splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert any("evil.example" in line for line in lines)  # it was logged, on one line


def test_the_first_admin_link_comes_from_a_command_and_works_once(hub_factory: HubFactory) -> None:
    fresh = hub_factory(auth={"type": "native"})
    assert "/hub/setup?token=" not in fresh.log()
    made = fresh.cli("setup-link")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert re.fullmatch(r"http://\S+/hub/setup\?token=\S+", link)
    assert link.startswith(fresh.url)
    owner = HubUser(fresh.url, "root")
    token = link.split("token=", 1)[1]
    page = owner.get(f"/hub/setup?token={token}")
    assert page.status_code == 200
    done = owner.post_form(
        "/hub/setup",
        {"token": token, "username": "root", "password": "a good password", "password_again": "a good password"},
        xsrf_from=f"/hub/setup?token={token}",
    )
    assert done.url.endswith("/hub/home")
    assert HubUser(fresh.url, "other").get(f"/hub/setup?token={token}").status_code == 404
    assert fresh.cli("setup-link").returncode != 0  # the hub has an admin now
