"""Nobody reaches a server that is not theirs: other users, tricks in the path, no session, no token."""

from __future__ import annotations

import json

import docker
import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
SECRET_FILE = "alice-private-notes.txt"


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "alice")
    assert user.login(password_of("alice")).url.endswith("/hub/home")
    assert user.start("jupyterlab").get("ready") is True
    response = user.send(
        "PUT",
        f"/user/alice/api/contents/{SECRET_FILE}",
        json={"type": "file", "format": "text", "content": "only for alice"},
    )
    assert response.status_code in (200, 201), response.text
    return user


@pytest.fixture(scope="module")
def bob(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "bob")
    assert user.login(password_of("bob")).url.endswith("/hub/home")
    assert user.start("echo").get("ready") is True
    return user


def test_alice_reads_her_own_files(alice: HubUser) -> None:
    response = alice.get("/user/alice/api/contents")
    assert response.status_code == 200
    assert SECRET_FILE in [item["name"] for item in response.json()["content"]]


@pytest.mark.parametrize(
    "path",
    [
        "/user/alice/api/contents",
        "/user/alice/",
        "/user/bob/../alice/api/contents",
        "/user/bob/%2e%2e/alice/api/contents",
        "/user/bob/%2E%2E%2Falice/api/contents",
        "/user/bob/..%2falice/api/contents",
        "/user/bob/%252e%252e/alice/api/contents",
        "//user/alice/api/contents",
        "/user/./alice/api/contents",
        "/user/alice%2fapi/contents",
    ],
)
def test_bob_cannot_open_alices_server(alice: HubUser, bob: HubUser, path: str) -> None:
    status, body, _ = bob.raw_get(path)
    assert SECRET_FILE not in body
    assert "only for alice" not in body
    assert status in (302, 400, 403, 404), (status, body[:200])


def test_a_visitor_without_session_is_sent_to_the_login_page(alice: HubUser, hub: HubProcess) -> None:
    anonymous = requests.get(f"{hub.url}/user/alice/api/contents", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302
    assert "/hub/login?next=/user/alice/api/contents" in anonymous.headers["Location"]
    followed = requests.get(f"{hub.url}/user/alice/lab", timeout=30)
    assert followed.url.startswith(f"{hub.url}/hub/login")
    assert "Log in" in followed.text


def test_the_container_refuses_requests_that_bypass_traefik(
    alice: HubUser, hub: HubProcess, docker_client: docker.DockerClient
) -> None:
    container = docker_client.containers.get(f"{hub.prefix}-user-alice")
    address = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    direct = requests.get(f"http://{address}:8888/user/alice/api/contents", timeout=10)
    assert direct.status_code == 403
    forged = requests.get(
        f"http://{address}:8888/user/alice/api/contents", headers={"Authorization": "token guessed"}, timeout=10
    )
    assert forged.status_code == 403


def test_the_users_server_sees_neither_the_hub_session_nor_a_forged_token(bob: HubUser) -> None:
    status, body, _ = bob.raw_get("/user/bob/echo?x=1", headers={"Authorization": "token forged-by-client"})
    assert status == 200, body
    seen = json.loads(body)
    assert seen["path"] == "/user/bob/echo?x=1"
    assert seen["headers"]["Authorization"] != "token forged-by-client"
    assert "hub-session" not in seen["headers"].get("Cookie", "")
    assert seen["uid"] == 1000


def test_bob_may_not_follow_or_stop_alices_server(alice: HubUser, bob: HubUser) -> None:
    assert bob.get("/hub/api/users/alice/server/progress").status_code == 403
    assert bob.get("/hub/spawn-pending/alice").status_code == 403
    assert alice.get("/user/alice/api/status").status_code == 200


def test_an_admin_cannot_open_other_servers_while_admin_access_is_off(bob: HubUser, hub: HubProcess) -> None:
    admin = HubUser(hub.url, "admin")
    admin.login(password_of("admin"))
    status, body, _ = admin.raw_get("/user/bob/echo")
    assert status == 403
    assert "belongs to another user" in body
