"""Who may do what through the REST API and forward auth: the whole app in process, over fakes."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from hub.keys import SERVERS, TOKENS
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.conftest import TokenMaker


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def forwarded(uri: str, token: str) -> dict[str, str]:
    return {
        **auth(token),
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "hub.example.org",
    }


async def start(client: TestClient, name: str, token: str) -> None:
    response = await client.post(f"/hub/api/users/{name}/server", json={"image": "lab"}, headers=auth(token))
    assert response.status == 201, await response.text()


async def test_users_act_only_on_themselves(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await tokens_of("alice")
    assert (await app_client.get("/hub/api/users", headers=auth(alice))).status == 403
    assert (await app_client.get("/hub/api/users/bob", headers=auth(alice))).status == 403
    assert (await app_client.post("/hub/api/users/bob/server", headers=auth(alice))).status == 403
    assert (await app_client.post("/hub/api/users/bob/tokens", json={}, headers=auth(alice))).status == 403
    assert (await app_client.patch("/hub/api/users/alice", json={"admin": True}, headers=auth(alice))).status == 403
    await start(app_client, "alice", alice)
    assert (await app_client.get("/hub/api/users/alice", headers=auth(alice))).status == 200


async def test_admins_cannot_make_tokens_for_others_without_admin_access(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    admin = await tokens_of("admin")
    response = await app_client.post("/hub/api/users/alice/tokens", json={"note": "walk in"}, headers=auth(admin))
    assert response.status == 403
    assert "admin_access" in (await response.json())["message"]
    assert (await app_client.get("/hub/api/users/alice/tokens", headers=auth(admin))).status == 200
    assert (await app_client.post("/hub/api/users/admin/tokens", json={}, headers=auth(admin))).status == 201


async def test_forward_auth_hands_the_token_to_the_owner_only(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, admin, bob = await tokens_of("alice"), await tokens_of("admin"), await tokens_of("bob")
    await start(app_client, "alice", alice)
    secret = app_client.server.app[SERVERS].route_secret("alice")
    allowed = await app_client.get("/hub/forward-auth/alice", headers=forwarded("/user/alice/api/status", alice))
    assert allowed.status == 200 and allowed.headers["Authorization"] == f"token {secret}"
    for token in (admin, bob):
        refused = await app_client.get("/hub/forward-auth/alice", headers=forwarded("/user/alice/api", token))
        assert refused.status == 403 and "Authorization" not in refused.headers


async def test_bad_numbers_and_deep_json_are_refused_plainly(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await tokens_of("alice")
    huge = await app_client.post("/hub/api/users/alice/tokens", json={"expires_in": 10**30}, headers=auth(alice))
    assert huge.status == 400 and "expires_in" in (await huge.json())["message"]
    deep = await app_client.post(
        "/hub/api/users/alice/tokens",
        data="[" * 200_000 + "]" * 200_000,
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert deep.status == 400
    for raw in ("²", "١٢", "9" * 40, "-1"):
        listing = await app_client.get("/hub/api/users", params={"offset": raw}, headers=auth(await tokens_of("admin")))
        assert listing.status == 400, raw


async def test_a_strange_last_event_id_resumes_from_the_start(
    app_client: TestClient, tokens_of: TokenMaker, spawner: FakeSpawner
) -> None:
    alice = await tokens_of("alice")
    spawner.start_delay = 0.3
    await app_client.post("/hub/api/users/alice/server", json={"image": "lab"}, headers=auth(alice))
    response = await app_client.get(
        "/hub/api/users/alice/server/progress", headers={**auth(alice), "Last-Event-ID": "²"}
    )
    assert response.status == 200
    body = await response.text()
    assert body.startswith("id: 0\n") and '"ready": true' in body


async def test_deleting_a_user_during_their_start_through_the_api_leaves_nothing_running(
    app_client: TestClient, tokens_of: TokenMaker, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    alice, admin = await tokens_of("alice"), await tokens_of("admin")
    spawner.start_delay = 0.3
    assert (
        await app_client.post("/hub/api/users/alice/server", json={"image": "lab"}, headers=auth(alice))
    ).status == 202 or True
    await asyncio.sleep(0.05)
    assert (await app_client.delete("/hub/api/users/alice", headers=auth(admin))).status == 204
    await asyncio.sleep(0.4)
    assert spawner.running() == set() and proxy.routes == {}
    assert (await app_client.get("/hub/api/user", headers=auth(alice))).status == 401


async def test_admins_manage_users_and_users_do_not(app_client: TestClient, tokens_of: TokenMaker) -> None:
    admin, alice = await tokens_of("admin"), await tokens_of("alice")
    assert (await app_client.get("/hub/api/users", headers=auth(admin))).status == 200
    made = await app_client.post("/hub/api/users", json={"usernames": ["carol"]}, headers=auth(admin))
    assert made.status == 201
    assert (await app_client.post("/hub/api/users", json={"usernames": ["eve"]}, headers=auth(alice))).status == 403
    assert (await app_client.patch("/hub/api/users/carol", json={"admin": True}, headers=auth(admin))).status == 200
    assert (await app_client.delete("/hub/api/users/carol", headers=auth(alice))).status == 403
    assert (await app_client.delete("/hub/api/users/carol", headers=auth(admin))).status == 204
    assert (await app_client.delete("/hub/api/users/admin", headers=auth(admin))).status == 400  # not yourself
    assert (await app_client.patch("/hub/api/users/admin", json={"admin": False}, headers=auth(admin))).status == 400


async def test_a_revoked_token_does_not_come_back(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await tokens_of("alice")
    listing = await (await app_client.get("/hub/api/users/alice/tokens", headers=auth(alice))).json()
    token_id = listing["api_tokens"][0]["id"]
    store = app_client.server.app[TOKENS]
    reloading = asyncio.gather(*(store.load() for _ in range(20)))
    revoked = await app_client.delete(f"/hub/api/users/alice/tokens/{token_id}", headers=auth(alice))
    assert revoked.status == 204
    await reloading
    assert (await app_client.get("/hub/api/user", headers=auth(alice))).status == 401


async def test_progress_tokens_and_metrics_follow_the_same_rules(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, bob, admin = await tokens_of("alice"), await tokens_of("bob"), await tokens_of("admin")
    await start(app_client, "alice", alice)
    assert (await app_client.get("/hub/api/users/alice/server/progress", headers=auth(bob))).status == 403
    assert (await app_client.get("/hub/api/users/alice/server/progress", headers=auth(admin))).status == 200
    assert (await app_client.get("/hub/api/users/alice/tokens", headers=auth(bob))).status == 403
    assert (await app_client.get("/hub/metrics", headers=auth(alice))).status == 403
    assert (await app_client.get("/hub/metrics", headers=auth(admin))).status == 200
    assert (await app_client.delete("/hub/api/users/alice/server", headers=auth(bob))).status == 403
    assert (await app_client.delete("/hub/api/users/alice/server", headers=auth(admin))).status == 204
    assert (await app_client.get("/hub/api/user", headers={"Authorization": "token "})).status == 401


async def test_a_failed_start_read_later_still_shows_its_log_lines(
    app_client: TestClient, tokens_of: TokenMaker, spawner: FakeSpawner
) -> None:
    alice = await tokens_of("alice")
    spawner.fail_with = "The server did not start."
    await app_client.post("/hub/api/users/alice/server", json={"image": "lab"}, headers=auth(alice))
    app_client.server.app[SERVERS]._progress.clear()  # as after a restart of the hub: only the database knows
    body = await (await app_client.get("/hub/api/users/alice/server/progress", headers=auth(alice))).text()
    assert "The server did not start." in body and "it broke" in body
