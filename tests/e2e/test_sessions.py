"""Sessions end when they should: logging out ends copies of the cookie, lost rights take effect at once."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.traefik]


def logged_in(user: HubUser) -> bool:
    return urlsplit(user.get("/hub/home").url).path == "/hub/home"


def test_logging_out_ends_a_copied_session_cookie(hub: HubProcess) -> None:
    alice = HubUser(hub.url, "alice")
    alice.login(password_of("alice"))
    thief = HubUser(hub.url, "alice")
    thief.http.cookies.update(alice.http.cookies)
    assert logged_in(thief)
    assert urlsplit(alice.post_form("/hub/logout", {}).url).path == "/hub/login"
    assert not logged_in(thief)
    assert thief.raw_get("/user/alice/lab")[0] == 302  # forward auth refuses the copy too
    alice.login(password_of("alice"))
    assert logged_in(alice)


def test_taking_away_admin_rights_takes_effect_at_once(hub: HubProcess) -> None:
    token = hub.token("admin")
    admin_api = {"Authorization": f"token {token}"}
    bob = HubUser(hub.url, "bob")
    bob.login(password_of("bob"))
    assert bob.get("/hub/admin").status_code == 403
    requests.patch(f"{hub.url}/hub/api/users/bob", json={"admin": True}, headers=admin_api, timeout=30)
    assert bob.get("/hub/admin").status_code == 200
    requests.patch(f"{hub.url}/hub/api/users/bob", json={"admin": False}, headers=admin_api, timeout=30)
    assert bob.get("/hub/admin").status_code == 403


def test_a_deleted_users_session_ends(hub: HubProcess) -> None:
    token = hub.token("admin")
    hub.add_user("gone", password_of("gone"))
    gone = HubUser(hub.url, "gone")
    gone.login(password_of("gone"))
    assert logged_in(gone)
    deleted = requests.delete(f"{hub.url}/hub/api/users/gone", headers={"Authorization": f"token {token}"}, timeout=30)
    assert deleted.status_code == 204
    assert not logged_in(gone)


def test_an_old_session_does_not_open_an_account_made_again_with_the_same_name(hub: HubProcess) -> None:
    token = hub.token("admin")
    api = {"Authorization": f"token {token}"}
    hub.add_user("reborn", password_of("reborn"))
    old = HubUser(hub.url, "reborn")
    old.login(password_of("reborn"))
    assert requests.delete(f"{hub.url}/hub/api/users/reborn", headers=api, timeout=30).status_code == 204
    assert (
        requests.post(f"{hub.url}/hub/api/users/reborn", json={"admin": True}, headers=api, timeout=30).status_code
        == 201
    )
    assert not logged_in(old)
