"""Named servers over fakes: each of a user's servers lives on its own, the limits count them, and the REST API
has JupyterHub's paths and shapes (POST/DELETE servers/{server}, its progress, the ``servers`` map)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient

from hub import names
from hub.accounts import AccountService
from hub.config import Settings
from hub.db import Sessionmaker, get_user
from hub.errors import BadRequest, LimitReached
from hub.keys import SERVERS
from hub.models import ServerState
from hub.reconcile import Reconciler
from hub.servers import ServerManager
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.conftest import TokenMaker
from tests.inprocess.test_api_rules import auth, forwarded


def lab(settings: Settings):  # type: ignore[no-untyped-def]
    return settings.images[0]


def with_lifecycle(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"lifecycle": settings.lifecycle.model_copy(update=changes)})


def with_spawner(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"spawner": settings.spawner.model_copy(update=changes)})


async def finished(manager: ServerManager, name: str, server: str = "") -> dict[str, object]:
    progress = manager.progress(name, server)
    assert progress is not None
    async for _ in progress.follow():
        pass
    assert progress.latest is not None
    return progress.latest.as_json()


async def states(sessions: Sessionmaker, name: str) -> dict[str, ServerState]:
    async with sessions() as session:
        user = await get_user(session, name)
        return {server.name: server.state for server in user.servers} if user else {}


async def test_two_servers_of_one_user_start_and_stop_on_their_own(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy, sessions: Sessionmaker
) -> None:
    await manager.start("alice", lab(settings))
    await manager.start("alice", lab(settings), "x")
    assert (await finished(manager, "alice"))["url"] == "/user/alice/lab"
    assert (await finished(manager, "alice", "x"))["url"] == "/user/alice/x/lab"
    assert spawner.running() == {"alice", "alice/x"}
    assert set(proxy.routes) == {"alice", names.server_slug("alice", "x")}
    assert proxy.routes[names.server_slug("alice", "x")].prefix == "/user/alice/x/"
    default, named = manager.route_secret("alice"), manager.route_secret("alice", "x")
    assert default and named and default != named  # each server has its own token
    assert spawner.servers["alice/x"].request.token == named
    # both mount the account's one volume (spawner.volume_per_server is off)
    assert spawner.servers["alice"].request.volume_name == spawner.servers["alice/x"].request.volume_name

    await manager.stop("alice", server="x")
    assert spawner.running() == {"alice"} and set(proxy.routes) == {"alice"}
    assert manager.route_secret("alice", "x") is None and manager.route_secret("alice") == default
    assert await states(sessions, "alice") == {"": ServerState.RUNNING, "x": ServerState.STOPPED}

    await manager.delete_server("alice", "x")
    assert await states(sessions, "alice") == {"": ServerState.RUNNING}


async def test_a_slow_start_of_one_server_holds_up_nothing_of_another(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner
) -> None:
    spawner.gate = asyncio.Event()
    await manager.start("alice", lab(settings), "slow")
    await asyncio.sleep(0.01)
    assert manager.is_spawning("alice", "slow") and not manager.is_spawning("alice")
    spawner.gate.set()
    await manager.start("alice", lab(settings))
    await asyncio.gather(finished(manager, "alice"), finished(manager, "alice", "slow"))
    assert spawner.running() == {"alice", "alice/slow"}


async def test_each_named_server_may_get_a_volume_of_its_own(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    manager = ServerManager(with_spawner(settings, volume_per_server=True), sessions, spawner, proxy)
    for server in ("", "x", "y"):
        await manager.start("alice", lab(settings), server)
        await finished(manager, "alice", server)
    volumes = {key: found.request.volume_name for key, found in spawner.servers.items()}
    assert len(set(volumes.values())) == 3
    assert volumes["alice/x"].startswith(f"hub-data-{names.server_slug('alice', 'x')}-")
    await manager.stop("alice", server="x")
    await manager.start("alice", lab(settings), "x")
    await finished(manager, "alice", "x")
    assert spawner.servers["alice/x"].request.volume_name == volumes["alice/x"]  # kept across stop and start
    await manager.shutdown()


async def test_the_limit_per_user_counts_named_servers_stopped_or_not(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    manager = ServerManager(with_lifecycle(settings, named_server_limit_per_user=2), sessions, spawner, proxy)
    for server in ("a", "b"):
        await manager.start("alice", lab(settings), server)
        await finished(manager, "alice", server)
    await manager.stop("alice", server="b")
    with pytest.raises(BadRequest, match="maximum of 2 named servers"):
        await manager.start("alice", lab(settings), "c")
    await manager.start("alice", lab(settings))  # the default server does not count
    await manager.start("alice", lab(settings), "b")  # nor does starting one she has
    await manager.start("bob", lab(settings), "c")  # and the limit is per user
    await manager.delete_server("alice", "a")
    await manager.start("alice", lab(settings), "c")
    await manager.shutdown()


async def test_the_running_server_cap_counts_servers_not_users(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    manager = ServerManager(with_lifecycle(settings, max_running_servers=2), sessions, spawner, proxy)
    await manager.start("alice", lab(settings))
    await manager.start("alice", lab(settings), "x")
    with pytest.raises(LimitReached):
        await manager.start("bob", lab(settings))
    with pytest.raises(LimitReached):
        await manager.start("alice", lab(settings), "y")
    await finished(manager, "alice", "x")
    await manager.stop("alice", server="x")
    await manager.start("bob", lab(settings))
    await manager.shutdown()


async def test_named_servers_can_be_turned_off(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    manager = ServerManager(with_spawner(settings, named_servers=False), sessions, spawner, proxy)
    with pytest.raises(BadRequest, match="not enabled"):
        await manager.start("alice", lab(settings), "x")
    with pytest.raises(BadRequest, match="cannot be used as a server name"):
        await ServerManager(settings, sessions, spawner, proxy).start("alice", lab(settings), "../bob")


async def test_reconcile_and_culling_look_at_each_server(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy, sessions: Sessionmaker
) -> None:
    for server in ("", "x", "y"):
        await manager.start("alice", lab(settings), server)
        await finished(manager, "alice", server)
    spawner.crash("alice/x", exit_code=3)
    del proxy.routes[names.server_slug("alice", "y")]  # a route file lost
    await Reconciler(settings, manager).run_once()
    assert await states(sessions, "alice") == {
        "": ServerState.RUNNING,
        "x": ServerState.STOPPED,
        "y": ServerState.RUNNING,
    }
    assert names.server_slug("alice", "y") in proxy.routes  # adopted: its route written again
    crashed = await manager.view("alice", "x")
    assert crashed is not None and "exit code 3" in (crashed.error or "")
    assert "alice" in spawner.running() and "alice/x" not in spawner.running()


async def test_deleting_a_user_stops_all_of_their_servers(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy, accounts: AccountService
) -> None:
    for server in ("", "x"):
        await manager.start("alice", lab(settings), server)
        await finished(manager, "alice", server)
    spawner.gate = asyncio.Event()
    await manager.start("alice", lab(settings), "starting")
    await manager.delete_user("alice", accounts.delete)
    assert not spawner.running() and not proxy.routes
    assert manager.spawning_servers("alice") == set()


# -- the REST API and forward auth -----------------------------------------------------------------------


async def start_named(client: TestClient, name: str, server: str, token: str, status: int = 201) -> None:
    response = await client.post(f"/hub/api/users/{name}/servers/{server}", json={"image": "lab"}, headers=auth(token))
    assert response.status == status, await response.text()


async def test_the_api_starts_lists_and_removes_named_servers_in_jupyterhubs_shapes(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await tokens_of("alice")
    await start_named(app_client, "alice", "x", alice)
    model = await (await app_client.get("/hub/api/users/alice", headers=auth(alice))).json()
    assert set(model["servers"]) == {"x"}
    assert model["server"] is None and model["pending"] is None  # those two are the default server's
    x = model["servers"]["x"]
    assert x["name"] == "x" and x["ready"] is True and x["pending"] is None and x["stopped"] is False
    assert x["url"] == "/user/alice/x/"
    assert x["progress_url"] == "/hub/api/users/alice/servers/x/progress"
    assert x["started"] and x["user_options"] == {"image": "lab"} and x["state"] == {}
    assert model["named_server_limit"] == 0

    stream = await app_client.get(x["progress_url"], headers=auth(alice))
    events = [json.loads(line[6:]) for line in (await stream.text()).splitlines() if line.startswith("data: ")]
    assert events[-1]["ready"] is True and events[-1]["url"] == "/user/alice/x/lab"

    again = await app_client.post("/hub/api/users/alice/servers/x", json={"image": "lab"}, headers=auth(alice))
    assert again.status == 400 and "already running" in (await again.json())["message"]

    stopped = await app_client.delete("/hub/api/users/alice/servers/x", headers=auth(alice))
    assert stopped.status == 204
    model = await (await app_client.get("/hub/api/users/alice", headers=auth(alice))).json()
    assert model["servers"] == {}  # only active servers, as JupyterHub
    listed = await app_client.get("/hub/api/users/alice?include_stopped_servers", headers=auth(alice))
    assert (await listed.json())["servers"]["x"]["stopped"] is True

    removed = await app_client.delete("/hub/api/users/alice/servers/x", json={"remove": True}, headers=auth(alice))
    assert removed.status == 204
    listed = await app_client.get("/hub/api/users/alice?include_stopped_servers=1", headers=auth(alice))
    assert (await listed.json())["servers"] == {}
    gone = await app_client.delete("/hub/api/users/alice/servers/x", headers=auth(alice))
    assert gone.status == 404
    default = await app_client.delete("/hub/api/users/alice/server", json={"remove": True}, headers=auth(alice))
    assert default.status == 400 and "default server cannot be deleted" in (await default.json())["message"]


async def test_the_api_refuses_bad_names_others_servers_and_the_limit(
    settings: Settings, app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, bob, admin = await tokens_of("alice"), await tokens_of("bob"), await tokens_of("admin")
    bad = await app_client.post("/hub/api/users/alice/servers/Bad%20Name", json={}, headers=auth(alice))
    assert bad.status == 400 and "cannot be used as a server name" in (await bad.json())["message"]
    assert (await app_client.post("/hub/api/users/alice/servers/x", json={}, headers=auth(bob))).status == 403
    assert (await app_client.delete("/hub/api/users/alice/servers/x", headers=auth(bob))).status == 403
    assert (await app_client.get("/hub/api/users/alice/servers/x/progress", headers=auth(bob))).status == 403
    await start_named(app_client, "alice", "x", admin)  # admins start and stop everyone's servers

    app = app_client.server.app
    servers: ServerManager = app[SERVERS]
    servers.settings = with_lifecycle(settings, named_server_limit_per_user=1)
    refused = await app_client.post("/hub/api/users/alice/servers/y", json={"image": "lab"}, headers=auth(alice))
    assert refused.status == 400 and "maximum of 1 named servers" in (await refused.json())["message"]
    assert (await app_client.delete("/hub/api/users/alice/servers/x", headers=auth(admin))).status == 204


async def test_forward_auth_hands_out_each_servers_own_token_and_only_under_its_address(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, bob = await tokens_of("alice"), await tokens_of("bob")
    await app_client.post("/hub/api/users/alice/server", json={"image": "lab"}, headers=auth(alice))
    await start_named(app_client, "alice", "x", alice)
    servers: ServerManager = app_client.server.app[SERVERS]

    named = await app_client.get("/hub/forward-auth/alice/x", headers=forwarded("/user/alice/x/api/status", alice))
    assert named.status == 200 and named.headers["Authorization"] == f"token {servers.route_secret('alice', 'x')}"
    default = await app_client.get("/hub/forward-auth/alice", headers=forwarded("/user/alice/api/status", alice))
    assert default.headers["Authorization"] == f"token {servers.route_secret('alice')}"
    assert servers.route_secret("alice") != servers.route_secret("alice", "x")

    # the named server's route never lets through a path outside its prefix, nor someone else
    for uri in ("/user/alice/api/status", "/user/alice/x/../api", "/user/alice/y/api", "/user/alice/x%2f..%2f/api"):
        refused = await app_client.get("/hub/forward-auth/alice/x", headers=forwarded(uri, alice))
        assert refused.status == 403, uri
    other = await app_client.get("/hub/forward-auth/alice/x", headers=forwarded("/user/alice/x/api/status", bob))
    assert other.status == 403
    missing = await app_client.get("/hub/forward-auth/alice/y", headers=forwarded("/user/alice/y/api", alice))
    assert missing.status == 503
