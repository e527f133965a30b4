"""With auth.admin_access on, admins may open users' servers; other users still may not."""

from __future__ import annotations

import json

import pytest

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


def test_admins_open_a_users_server_when_admin_access_is_on(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth={"type": "native", "admin_users": ["admin"], "admin_access": True})
    for name in ("alice", "admin", "bob"):
        hub.add_user(name, password_of(name))
    alice = HubUser(hub.url, "alice")
    alice.login(password_of("alice"))
    assert alice.start("echo").get("ready") is True

    admin = HubUser(hub.url, "admin")
    admin.login(password_of("admin"))
    status, body, _ = admin.raw_get("/user/alice/files")
    assert status == 200
    assert json.loads(body)["path"] == "/user/alice/files"
    assert "hub-session" not in json.loads(body)["headers"].get("Cookie", "")  # alice's server never gets it

    bob = HubUser(hub.url, "bob")
    bob.login(password_of("bob"))
    assert bob.raw_get("/user/alice/files")[0] == 403
