"""The REST API with real tokens against a real hub: JupyterHub's paths, shapes and rules."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests

from tests.fixtures.hub import HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
PAGINATED = {"Accept": "application/jupyterhub-pagination+json"}


class Api:
    def __init__(self, hub: HubProcess, token: str | None) -> None:
        self.base = f"{hub.url}/hub/api"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        return self.http.request(method, self.base + path, data=data, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def tokens(hub: HubProcess) -> dict[str, str]:
    return {name: hub.token(name) for name in ("admin", "alice", "bob")}


@pytest.fixture(scope="module")
def admin(hub: HubProcess, tokens: dict[str, str]) -> Api:
    return Api(hub, tokens["admin"])


@pytest.fixture(scope="module")
def alice(hub: HubProcess, tokens: dict[str, str]) -> Api:
    return Api(hub, tokens["alice"])


@pytest.fixture(scope="module")
def bob(hub: HubProcess, tokens: dict[str, str]) -> Api:
    return Api(hub, tokens["bob"])


@pytest.fixture(scope="module")
def alice_running(alice: Api) -> None:
    response = alice.call("POST", "/users/alice/server", {"image": "echo"})
    assert response.status_code == 201, response.text


def test_version_and_who_am_i(hub: HubProcess, alice: Api, tokens: dict[str, str]) -> None:
    assert Api(hub, None).call("GET", "/").json()["version"] == "5.0.0"
    me = alice.call("GET", "/user").json()
    assert (me["kind"], me["name"], me["admin"]) == ("user", "alice", False)
    bearer = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"Bearer {tokens['bob']}"}, timeout=30)
    assert bearer.json()["name"] == "bob"


@pytest.mark.parametrize("header", [None, "token not-a-real-token", "Bearer ", "Basic YWxpY2U6eA=="])
def test_requests_without_a_valid_token_get_401_in_json(hub: HubProcess, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{hub.url}/hub/api/user", headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json()["status"] == 401 and response.json()["message"]


def test_admins_add_and_page_through_users(admin: Api, alice: Api) -> None:
    names = [f"pupil{number:02d}" for number in range(7)]
    created = admin.call("POST", "/users", {"usernames": names, "admin": False})
    assert created.status_code == 201
    assert [user["name"] for user in created.json()] == names
    assert admin.call("POST", "/users", {"usernames": names}).status_code == 409
    assert admin.call("POST", "/users", {"usernames": ["../x"]}).status_code == 400
    assert alice.call("GET", "/users").status_code == 403

    first = admin.call("GET", "/users?limit=3", headers=PAGINATED).json()
    assert len(first["items"]) == 3 and first["_pagination"]["total"] >= 10
    assert first["_pagination"]["next"]["offset"] == 3
    seen = [user["name"] for user in first["items"]]
    following = first["_pagination"]["next"]
    while following:
        page = admin.http.get(following["url"], headers=PAGINATED, timeout=30).json()
        seen += [user["name"] for user in page["items"]]
        following = page["_pagination"]["next"]
    assert admin.call("GET", "/users?offset=%C2%B2").status_code == 400
    assert admin.call("GET", "/users?limit=0", headers=PAGINATED).json()["_pagination"]["next"]["offset"] == 1
    plain = admin.call("GET", "/users").json()
    assert isinstance(plain, list)
    assert seen == [user["name"] for user in plain]
    assert set(names) <= set(seen)


def test_state_filter_and_the_models(admin: Api, alice: Api, alice_running: None) -> None:
    ready = {user["name"] for user in admin.call("GET", "/users?state=ready").json()}
    active = {user["name"] for user in admin.call("GET", "/users?state=active").json()}
    inactive = {user["name"] for user in admin.call("GET", "/users?state=inactive").json()}
    assert "alice" in ready and "alice" in active and "alice" not in inactive and "bob" in inactive
    assert admin.call("GET", "/users?state=sleepy").status_code == 400

    model = alice.call("GET", "/users/alice").json()
    assert model["server"] == "/user/alice/" and model["pending"] is None
    server = model["servers"][""]
    assert server["ready"] is True and server["url"] == "/user/alice/"
    assert server["user_options"] == {"image": "echo", "mem_limit": "256m"}  # the image and its limits
    assert ISO.match(server["started"]) and ISO.match(server["last_activity"]) and ISO.match(model["created"])


def test_a_user_cannot_read_start_or_stop_another_users_server(bob: Api, alice_running: None) -> None:
    assert bob.call("GET", "/users/alice").status_code == 403
    assert bob.call("POST", "/users/alice/server", {"image": "echo"}).status_code == 403
    assert bob.call("DELETE", "/users/alice/server").status_code == 403
    assert bob.call("GET", "/users/alice/server/progress").status_code == 403
    assert bob.call("GET", "/users/alice/tokens").status_code == 403
    assert bob.call("PATCH", "/users/bob", {"admin": True}).status_code == 403
    refused = bob.call("POST", "/users", {"usernames": ["mallory"]})
    assert refused.status_code == 403 and refused.json() == {"status": 403, "message": "Only admins may do this."}


def test_start_errors_have_the_right_codes(admin: Api, alice: Api, alice_running: None) -> None:
    assert alice.call("POST", "/users/alice/server", {"image": "echo"}).status_code == 400  # already running
    assert admin.call("POST", "/users/bob/server", {"image": "no-such-image"}).status_code == 400
    assert admin.call("POST", "/users/ghost/server", {"image": "echo"}).status_code == 404
    assert admin.http.post(f"{admin.base}/users/bob/server", data="{not json", timeout=30).status_code == 400


def test_the_progress_stream_of_a_real_spawn(admin: Api, bob: Api) -> None:
    started = admin.call("POST", "/users/bob/server", {"image": "jupyterlab"})
    assert started.status_code in (201, 202)
    events = []
    with bob.http.get(f"{bob.base}/users/bob/server/progress", stream=True, timeout=120) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert len(events) >= 4
    assert [event["progress"] for event in events] == sorted(event["progress"] for event in events)
    assert events[-1]["ready"] is True and events[-1]["url"] == "/user/bob/lab"
    assert all(isinstance(event["message"], str) and event["message"] for event in events)
    assert bob.call("GET", "/users/bob").json()["servers"][""]["ready"] is True
    assert bob.call("DELETE", "/users/bob/server").status_code == 204
    assert bob.call("GET", "/users/bob").json()["servers"] == {}


def test_tokens_can_be_made_expire_and_be_revoked(hub: HubProcess, alice: Api) -> None:
    made = alice.call("POST", "/users/alice/tokens", {"note": "short-lived", "expires_in": 2})
    assert made.status_code == 201
    short = made.json()
    assert short["note"] == "short-lived" and ISO.match(short["expires_at"]) and short["token"]
    assert Api(hub, short["token"]).call("GET", "/user").status_code == 200
    listed = alice.call("GET", "/users/alice/tokens").json()["api_tokens"]
    assert short["id"] in [token["id"] for token in listed]
    assert all("token" not in token for token in listed)
    assert alice.call("GET", f"/users/alice/tokens/{short['id']}").json()["note"] == "short-lived"
    time.sleep(2.5)
    assert Api(hub, short["token"]).call("GET", "/user").status_code == 401

    other = alice.call("POST", "/users/alice/tokens", {"note": "to revoke"}).json()
    assert Api(hub, other["token"]).call("GET", "/user").status_code == 200
    assert alice.call("DELETE", f"/users/alice/tokens/{other['id']}").status_code == 204
    assert Api(hub, other["token"]).call("GET", "/user").status_code == 401
    assert alice.call("GET", f"/users/alice/tokens/{other['id']}").status_code == 404
    assert alice.call("POST", "/users/alice/tokens", {"expires_in": -5}).status_code == 400


def test_a_token_opens_its_owners_server_only(hub: HubProcess, tokens: dict[str, str], alice_running: None) -> None:
    mine = requests.get(
        f"{hub.url}/user/alice/files",
        headers={"Authorization": f"token {tokens['alice']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert mine.status_code == 200
    assert mine.json()["headers"]["Authorization"] != f"token {tokens['alice']}"  # the route's own token replaced it
    theirs = requests.get(
        f"{hub.url}/user/alice/files",
        headers={"Authorization": f"token {tokens['bob']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert theirs.status_code == 403
    forged = requests.get(
        f"{hub.url}/user/alice/files", headers={"Authorization": "token forged"}, timeout=30, allow_redirects=False
    )
    assert forged.status_code == 401


def test_admins_change_rights_and_delete_users(hub: HubProcess, admin: Api, bob: Api) -> None:
    assert bob.call("GET", "/users").status_code == 403
    promoted = admin.call("PATCH", "/users/bob", {"admin": True})
    assert promoted.status_code == 200 and promoted.json()["admin"] is True
    assert bob.call("GET", "/users").status_code == 200  # the token follows the new rights at once
    assert admin.call("PATCH", "/users/bob", {"admin": False}).json()["admin"] is False
    assert admin.call("PATCH", "/users/bob", {"name": "robert"}).status_code == 400

    assert admin.call("POST", "/users/temp", {"admin": False}).status_code == 201
    assert admin.call("POST", "/users/temp").status_code == 409
    temp_token = hub.token("temp")
    assert admin.call("DELETE", "/users/temp").status_code == 204
    assert admin.call("GET", "/users/temp").status_code == 404
    assert Api(hub, temp_token).call("GET", "/user").status_code == 401


def test_health_and_metrics(hub: HubProcess, admin: Api, alice: Api, alice_running: None) -> None:
    health = requests.get(f"{hub.url}/hub/health", timeout=30).json()
    assert {key: health[key] for key in ("docker", "traefik")} == {"docker": True, "traefik": True}
    assert health["status"] in ("ok", "warning")  # warning: a low disk or a size limit this host cannot enforce
    assert requests.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 401
    assert alice.http.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 403
    metrics = admin.http.get(f"{hub.url}/hub/metrics", timeout=30)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.text
    assert re.search(r"^hub_running_servers [1-9]", text, re.M)
    assert re.search(r"^hub_users [1-9]", text, re.M)
    assert re.search(r"^hub_spawn_duration_seconds_count [1-9]", text, re.M)
    assert re.search(r'^hub_forward_auth_requests_total\{result="allowed"\} [1-9]', text, re.M)
    assert "hub_spawn_failures_total" in text
