"""Each authenticator, through a real hub: dummy (shared password) and PAM (a real Linux user)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.client import HubUser
from tests.fixtures.hub import HubFactory

pytestmark = [pytest.mark.traefik]


def test_dummy_authenticator_takes_any_name_with_the_shared_password(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth={"type": "dummy", "dummy_password": "shared-secret-1"})
    assert "the dummy authenticator lets anyone log in" in hub.log()
    guest = HubUser(hub.url, "Guest.One")
    assert guest.login("shared-secret-1").url.endswith("/hub/home")
    assert 'data-testid="username">guest.one' in guest.get("/hub/home").text
    stranger = HubUser(hub.url, "guest2")
    assert stranger.login("wrong").status_code == 403


@pytest.fixture
def linux_user(run_prefix: str) -> Iterator[tuple[str, str]]:
    name = f"hp{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    subprocess.run(["useradd", "--no-create-home", "--comment", f"hub test {run_prefix}", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True)
        yield name, password
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.mark.pam
def test_pam_authenticator_logs_in_a_real_linux_user(hub_factory: HubFactory, linux_user: tuple[str, str]) -> None:
    name, password = linux_user
    hub = hub_factory(auth={"type": "pam", "admin_users": [name]})
    user = HubUser(hub.url, name)
    assert user.login(password).url.endswith("/hub/home")
    assert "(admin)" in user.get("/hub/home").text
    intruder = HubUser(hub.url, name)
    response = intruder.login(password + "x")
    assert response.status_code == 403
    assert "Invalid user name or password." in response.text


def test_allowed_users_keeps_others_out(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth={"type": "dummy", "dummy_password": "shared-secret-2", "allowed_users": ["carol"]})
    assert HubUser(hub.url, "carol").login("shared-secret-2").url.endswith("/hub/home")
    assert HubUser(hub.url, "dave").login("shared-secret-2").status_code == 403
