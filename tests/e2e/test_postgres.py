"""The hub on PostgreSQL (by URL) instead of SQLite: users, servers and sessions survive a restart."""

from __future__ import annotations

import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


def test_the_hub_keeps_its_state_in_postgresql(hub_factory: HubFactory, postgres_url: str) -> None:
    hub = hub_factory(database_url=postgres_url)
    hub.add_user("paula", password_of("paula"), admin=True)
    paula = HubUser(hub.url, "paula")
    assert paula.login(password_of("paula")).url.endswith("/hub/home")
    assert paula.start("echo").get("ready") is True
    token = hub.token("paula")

    hub.stop()
    hub.start()
    assert 'data-state="running"' in paula.get("/hub/home").text  # same session, same server
    assert paula.get("/user/paula/after-restart").status_code == 200
    listed = requests.get(f"{hub.url}/hub/api/users", headers={"Authorization": f"token {token}"}, timeout=30).json()
    assert [(user["name"], user["admin"], user["servers"][""]["ready"]) for user in listed] == [("paula", True, True)]
    assert "postgresql" in hub.config_path.read_text()
