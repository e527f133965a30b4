"""JupyterHub's REST API endpoints that tools call besides users and servers: /info, /services, reported
activity, one server's model, making and renaming named servers, an owner's share codes and group shares.
The whole app in process, over fakes; who may do what as in JupyterHub (own things, or an admin)."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from hub.accounts import AccountService
from hub.activity import ActivityTracker
from hub.config import Settings
from hub.culler import IdleCuller
from hub.db import Sessionmaker, get_user
from hub.errors import BadRequest
from hub.keys import ACTIVITY, GROUPS, SESSIONS, SHARING
from hub.models import Server, utcnow
from hub.servers import ServerManager
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.conftest import TokenMaker
from tests.inprocess.pages import log_in
from tests.inprocess.test_api_rules import auth, forwarded, start
from tests.inprocess.test_named_servers import finished, with_lifecycle, with_spawner


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The in-process hub's settings (tests/inprocess/conftest.py) with sharing on (share codes, group shares)."""
    return settings.model_copy(update={"sharing": settings.sharing.model_copy(update={"enabled": True})})


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_info_is_for_admins_and_names_the_software_as_jupyterhub_does(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, admin = await tokens_of("alice"), await tokens_of("admin")
    assert (await app_client.get("/hub/api/info", headers=auth(alice))).status == 403
    assert (await app_client.get("/hub/api/info")).status == 401
    answer = await app_client.get("/hub/api/info", headers=auth(admin))
    assert answer.status == 200
    info = await answer.json()
    assert info["version"] == "5.0.0" and info["python"] == sys.version and info["sys_executable"] == sys.executable
    assert info["spawner"]["class"] == "tests.fakes.FakeSpawner" and info["spawner"]["version"]
    assert info["authenticator"]["class"].startswith("hub.auth.") and info["authenticator"]["version"]


async def test_services_are_an_empty_map_and_each_name_is_unknown(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, admin = await tokens_of("alice"), await tokens_of("admin")
    assert await (await app_client.get("/hub/api/services", headers=auth(admin))).json() == {}
    missing = await app_client.get("/hub/api/services/culler", headers=auth(admin))
    assert missing.status == 404 and "no service" in (await missing.json())["message"]
    assert (await app_client.get("/hub/api/services", headers=auth(alice))).status == 403
    assert (await app_client.get("/hub/api/services/culler", headers=auth(alice))).status == 403


async def test_reported_activity_reaches_the_user_model_and_never_moves_back(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, bob = await tokens_of("alice"), await tokens_of("bob")
    await start(app_client, "alice", alice)
    tracker = app_client.server.app[ACTIVITY]
    soon = utcnow() + dt.timedelta(minutes=5)  # later than the token's own use: the report must win
    body = {"servers": {"": {"last_activity": iso(soon)}}}
    assert (await app_client.post("/hub/api/users/alice/activity", json=body, headers=auth(bob))).status == 403
    reported = await app_client.post("/hub/api/users/alice/activity", json=body, headers=auth(alice))
    assert reported.status == 200
    # a future moment counts as now (nobody keeps a server from the idle culler by reporting ahead)
    moment = tracker.server_latest("alice")
    assert moment is not None and moment <= utcnow()
    older = {"last_activity": "2020-01-01T00:00:00Z", "servers": {"": {"last_activity": "2020-01-01T00:00:00Z"}}}
    assert (await app_client.post("/hub/api/users/alice/activity", json=older, headers=auth(alice))).status == 200
    assert tracker.server_latest("alice") == moment  # never backwards
    model = await (await app_client.get("/hub/api/users/alice", headers=auth(alice))).json()
    assert model["servers"][""]["last_activity"] == iso(moment)

    for bad, why in [
        ({}, "last_activity, servers"),
        ({"last_activity": "yesterday"}, "not an ISO 8601 time"),
        ({"last_activity": iso(utcnow() + dt.timedelta(hours=2))}, "more than an hour in the future"),
        ({"servers": {"nope": {"last_activity": iso(utcnow())}}}, "no server named 'nope'"),
        ({"servers": {"": {}}}, "servers must look like"),
    ]:
        refused = await app_client.post("/hub/api/users/alice/activity", json=bad, headers=auth(alice))
        assert refused.status == 400 and why in (await refused.json())["message"], bad
    nobody = await app_client.post("/hub/api/users/nobody/activity", json=older, headers=auth(await tokens_of("admin")))
    assert nobody.status == 404


async def test_activity_is_saved_without_moving_the_database_back(app_client: TestClient) -> None:
    """After a restart the memory is empty: an old report must not overwrite a newer saved moment."""
    sessions = app_client.server.app[SESSIONS]
    newer = utcnow()
    fresh = ActivityTracker(sessions)
    fresh.report("alice", newer)
    await fresh.flush()
    restarted = ActivityTracker(sessions)
    restarted.report("alice", newer - dt.timedelta(days=3))
    await restarted.flush()
    async with sessions() as session:
        user = await get_user(session, "alice")
        assert user is not None and user.last_activity is not None
        assert user.last_activity.replace(tzinfo=dt.UTC) == newer


async def test_one_servers_model_for_its_owner_and_admins(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, bob, admin = await tokens_of("alice"), await tokens_of("bob"), await tokens_of("admin")
    assert (await app_client.get("/hub/api/users/alice/servers/", headers=auth(alice))).status == 404  # never started
    await start(app_client, "alice", alice)
    default = await app_client.get("/hub/api/users/alice/servers/", headers=auth(alice))
    model = await default.json()
    assert default.status == 200 and model["name"] == "" and model["ready"] and model["url"] == "/user/alice/"
    stopped = await app_client.delete("/hub/api/users/alice/servers/", headers=auth(alice))  # JupyterHub's path too
    assert stopped.status == 204
    assert not (await (await app_client.get("/hub/api/users/alice/servers/", headers=auth(alice))).json())["ready"]
    await start(app_client, "alice", alice)
    model = await (await app_client.get("/hub/api/users/alice/servers/", headers=auth(alice))).json()
    whole = await (await app_client.get("/hub/api/users/alice", headers=auth(alice))).json()
    assert whole["servers"][""] == model
    assert (await app_client.get("/hub/api/users/alice/servers/", headers=auth(bob))).status == 403
    assert (await app_client.get("/hub/api/users/alice/servers/", headers=auth(admin))).status == 200
    missing = await app_client.get("/hub/api/users/alice/servers/nope", headers=auth(alice))
    assert missing.status == 404 and "no server named 'nope'" in (await missing.json())["message"]


async def test_a_named_server_is_made_without_starting_then_renamed(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, bob = await tokens_of("alice"), await tokens_of("bob")
    assert (await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(bob))).status == 403
    made = await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(alice))
    assert made.status == 201
    model = await made.json()
    assert model["name"] == "thesis" and model["stopped"] and not model["ready"] and model["started"] is None
    again = await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(alice))
    assert again.status == 409 and "already has a server named 'thesis'" in (await again.json())["message"]
    default = await app_client.put("/hub/api/users/alice/servers/", headers=auth(alice))
    assert default.status == 409 and "default server already" in (await default.json())["message"]
    for body, why in [
        ({"user_options": {"image": "app"}}, "Options are chosen when the server starts"),
        ({"display_name": "My thesis"}, "no display names"),
    ]:
        refused = await app_client.put("/hub/api/users/alice/servers/other", json=body, headers=auth(alice))
        assert refused.status == 400 and why in (await refused.json())["message"]
    listed = await (await app_client.get("/hub/api/users/alice?include_stopped_servers", headers=auth(alice))).json()
    assert set(listed["servers"]) == {"thesis"}

    assert (
        await app_client.patch("/hub/api/users/alice/servers/thesis", json={"name": "x"}, headers=auth(bob))
    ).status == 403
    bad = await app_client.patch("/hub/api/users/alice/servers/thesis", json={"name": "Bad Name"}, headers=auth(alice))
    assert bad.status == 400 and "cannot be used as a server name" in (await bad.json())["message"]
    renamed = await app_client.patch("/hub/api/users/alice/servers/thesis", json={"name": "paper"}, headers=auth(alice))
    assert renamed.status == 200 and (await renamed.json())["name"] == "paper"
    assert (await app_client.get("/hub/api/users/alice/servers/thesis", headers=auth(alice))).status == 404
    started = await app_client.post("/hub/api/users/alice/servers/paper", json={"image": "lab"}, headers=auth(alice))
    assert started.status == 201
    assert (await (await app_client.get("/hub/api/users/alice/servers/paper", headers=auth(alice))).json())["ready"]
    running = await app_client.patch("/hub/api/users/alice/servers/paper", json={"name": "p2"}, headers=auth(alice))
    assert running.status == 400 and "must be stopped" in (await running.json())["message"]
    await start(app_client, "alice", alice)
    default = await app_client.patch("/hub/api/users/alice/servers/", json={"name": "p3"}, headers=auth(alice))
    assert default.status == 400 and "default server cannot be renamed" in (await default.json())["message"]


async def test_renaming_keeps_the_servers_shares(app_client: TestClient, tokens_of: TokenMaker) -> None:
    """The server manager tells sharing and activity of a rename (they keep things by server name in memory):
    the grantee's access and the server's last activity follow it."""
    alice, bob = await tokens_of("alice"), await tokens_of("bob")
    assert (await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(alice))).status == 201
    shared = await app_client.post("/hub/api/shares/alice/thesis", json={"user": "bob"}, headers=auth(alice))
    assert shared.status == 200
    moment = utcnow().replace(microsecond=0) - dt.timedelta(minutes=5)
    body = {"servers": {"thesis": {"last_activity": iso(moment)}}}  # a stopped server's: kept in memory only
    assert (await app_client.post("/hub/api/users/alice/activity", json=body, headers=auth(alice))).status == 200
    taken = await app_client.put("/hub/api/users/alice/servers/taken", headers=auth(alice))
    assert taken.status == 201
    clash = await app_client.patch("/hub/api/users/alice/servers/thesis", json={"name": "taken"}, headers=auth(alice))
    assert clash.status == 409
    moved = await app_client.patch("/hub/api/users/alice/servers/thesis", json={"name": "paper"}, headers=auth(alice))
    assert moved.status == 200
    assert (await moved.json())["last_activity"] == iso(moment)
    mine = await (await app_client.get("/hub/api/users/bob/shared", headers=auth(bob))).json()
    assert [item["server"]["name"] for item in mine["items"]] == ["paper"]
    assert app_client.server.app[SHARING].may_use("bob", "alice", "paper")
    assert not app_client.server.app[SHARING].may_use("bob", "alice", "thesis")
    started = await app_client.post("/hub/api/users/alice/servers/paper", json={"image": "lab"}, headers=auth(alice))
    assert started.status == 201
    let_in = await app_client.get("/hub/forward-auth/alice/paper", headers=forwarded("/user/alice/paper/lab", bob))
    assert let_in.status == 200, await let_in.text()


async def test_share_codes_of_all_an_owners_servers(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, bob, admin = await tokens_of("alice"), await tokens_of("bob"), await tokens_of("admin")
    await start(app_client, "alice", alice)
    assert (await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(alice))).status == 201
    for server in ("", "thesis"):
        made = await app_client.post(f"/hub/api/share-codes/alice/{server}", json={}, headers=auth(alice))
        assert made.status == 200
    codes = await (await app_client.get("/hub/api/share-codes/alice", headers=auth(alice))).json()
    assert [item["server"]["name"] for item in codes["items"]] == ["", "thesis"]
    assert codes["_pagination"]["total"] == 2 and all("code" not in item for item in codes["items"])
    assert (await app_client.get("/hub/api/share-codes/alice", headers=auth(admin))).status == 200
    assert (await app_client.get("/hub/api/share-codes/alice", headers=auth(bob))).status == 403
    assert (await app_client.get("/hub/api/share-codes/nobody", headers=auth(admin))).status == 404


async def test_group_shares_are_listed_and_left_by_admins(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, bob, admin = await tokens_of("alice"), await tokens_of("bob"), await tokens_of("admin")
    await app_client.server.app[GROUPS].create(["physics"])
    await app_client.server.app[GROUPS].add_users("physics", ["bob"])
    await start(app_client, "alice", alice)
    shared = await app_client.post("/hub/api/shares/alice/", json={"group": "physics"}, headers=auth(alice))
    assert shared.status == 200
    listing = await app_client.get("/hub/api/groups/physics/shared", headers=auth(admin))
    items = (await listing.json())["items"]
    assert listing.status == 200 and [(i["kind"], i["group"], i["server"]["url"]) for i in items] == [
        ("group", {"name": "physics"}, "/user/alice/")
    ]
    one = await app_client.get("/hub/api/groups/physics/shared/alice/", headers=auth(admin))
    assert one.status == 200 and (await one.json())["group"] == {"name": "physics"}
    for who in (alice, bob):  # JupyterHub gives users no scope on their groups' shares
        assert (await app_client.get("/hub/api/groups/physics/shared", headers=auth(who))).status == 403
        assert (await app_client.delete("/hub/api/groups/physics/shared/alice/", headers=auth(who))).status == 403
    assert (await app_client.get("/hub/api/groups/nobody/shared", headers=auth(admin))).status == 404
    assert app_client.server.app[SHARING].may_use("bob", "alice")
    left = await app_client.delete("/hub/api/groups/physics/shared/alice/", headers=auth(admin))
    assert left.status == 204
    assert not app_client.server.app[SHARING].may_use("bob", "alice")
    gone = await app_client.get("/hub/api/groups/physics/shared/alice/", headers=auth(admin))
    assert gone.status == 404


async def test_a_renamed_server_keeps_its_own_volume_and_a_new_one_of_the_old_name_gets_another(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    manager = ServerManager(with_spawner(settings, volume_per_server=True), sessions, spawner, proxy)
    await manager.start("alice", settings.images[0], "x")
    await finished(manager, "alice", "x")
    volume = spawner.servers["alice/x"].request.volume_name
    with pytest.raises(BadRequest, match="must be stopped"):
        await manager.rename("alice", "x", "y")
    await manager.stop("alice", server="x")
    await manager.rename("alice", "x", "y")
    await manager.start("alice", settings.images[0], "y")
    await finished(manager, "alice", "y")
    assert spawner.servers["alice/y"].request.volume_name == volume  # the files went with the server
    await manager.create("alice", "x", settings.images[0])
    await manager.start("alice", settings.images[0], "x")
    await finished(manager, "alice", "x")
    assert spawner.servers["alice/x"].request.volume_name != volume
    await manager.shutdown()


async def test_servers_made_without_starting_count_for_the_named_server_limit(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    limited = with_lifecycle(settings, named_server_limit_per_user=1)
    manager = ServerManager(limited, sessions, spawner, proxy)
    await manager.create("alice", "one", settings.images[0])
    with pytest.raises(BadRequest, match="maximum of 1 named servers"):
        await manager.create("alice", "two", settings.images[0])
    assert spawner.running() == set()  # made, not started
    off = ServerManager(with_spawner(settings, named_servers=False), sessions, spawner, proxy)
    with pytest.raises(BadRequest, match="not enabled"):
        await off.create("alice", "three", settings.images[0])
    with pytest.raises(BadRequest, match="not enabled"):
        await off.rename("alice", "one", "uno")
    await manager.shutdown()
    await off.shutdown()


async def test_reported_activity_keeps_a_server_from_the_idle_culler(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    culling = settings.model_copy(update={"culler": settings.culler.model_copy(update={"idle_timeout": 3600})})
    manager = ServerManager(culling, sessions, spawner, proxy)
    app_image = culling.images[1]  # not a Jupyter server: the culler asks it nothing, only activity counts
    for name in ("alice", "bob"):
        await manager.start(name, app_image)
        await finished(manager, name)
    long_ago = utcnow() - dt.timedelta(hours=3)
    async with sessions.begin() as session:
        await session.execute(update(Server).values(started=long_ago, last_activity=long_ago))
    tracker = ActivityTracker(sessions)
    tracker.report("alice", servers={"": utcnow() - dt.timedelta(minutes=5)})  # as jupyterhub-singleuser would
    assert await IdleCuller(culling, manager, tracker).run_once() == ["bob"]
    await manager.shutdown()


async def test_a_server_made_through_the_api_is_on_its_owners_home_page_ready_to_start(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await tokens_of("alice")
    assert (await app_client.put("/hub/api/users/alice/servers/thesis", headers=auth(alice))).status == 201
    await log_in(app_client, "alice")
    home = await (await app_client.get("/hub/home")).text()
    assert '<a class="button start" href="/hub/spawn/alice/thesis">' in home
