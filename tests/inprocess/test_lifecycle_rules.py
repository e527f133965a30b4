"""The server lifecycle's concurrency rules, over fakes: each runs in milliseconds."""

from __future__ import annotations

import asyncio

import pytest

from hub import names, server_states
from hub.accounts import AccountService
from hub.config import Settings
from hub.db import Sessionmaker, get_user
from hub.errors import Conflict, LimitReached
from hub.models import ServerState
from hub.reconcile import Reconciler
from hub.servers import Seen, ServerManager
from tests.fakes import FakeProxy, FakeSpawner


async def finished(manager: ServerManager, name: str) -> dict[str, object]:
    progress = manager.progress(name)
    assert progress is not None
    async for _ in progress.follow():
        pass
    assert progress.latest is not None
    return progress.latest.as_json()


async def state_of(sessions: Sessionmaker, name: str) -> ServerState | None:
    async with sessions() as session:
        user = await get_user(session, name)
        return user.server.state if user and user.server else None


def lab(settings: Settings):  # type: ignore[no-untyped-def]
    return settings.images[0]


async def test_a_start_routes_the_server_and_keeps_its_token_only_in_memory(
    manager: ServerManager, settings: Settings, proxy: FakeProxy, sessions: Sessionmaker
) -> None:
    await manager.start("alice", lab(settings))
    assert (await finished(manager, "alice"))["ready"] is True
    assert await state_of(sessions, "alice") == ServerState.RUNNING
    assert names.user_slug("alice") in proxy.routes
    secret = manager.route_secret("alice")
    assert secret and secret not in repr(proxy.routes)  # the route holds no secret; forward auth hands it out
    await manager.stop("alice")
    assert manager.route_secret("alice") is None and not proxy.routes


async def test_two_clicks_join_one_start(manager: ServerManager, settings: Settings, spawner: FakeSpawner) -> None:
    spawner.start_delay = 0.05
    first, second = await asyncio.gather(manager.start("alice", lab(settings)), manager.start("alice", lab(settings)))
    assert first is second
    await finished(manager, "alice")
    assert spawner.started == ["alice"]


async def test_the_running_server_cap_is_claimed_atomically(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    capped = settings.model_copy(update={"lifecycle": settings.lifecycle.model_copy(update={"max_running_servers": 1})})
    manager = ServerManager(capped, sessions, spawner, proxy)
    results = await asyncio.gather(
        manager.start("alice", lab(settings)), manager.start("bob", lab(settings)), return_exceptions=True
    )
    assert sum(isinstance(result, LimitReached) for result in results) == 1
    await manager.shutdown()


async def test_stop_during_start_leaves_nothing_running(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy, sessions: Sessionmaker
) -> None:
    spawner.gate = asyncio.Event()
    await manager.start("alice", lab(settings))
    await asyncio.sleep(0.01)
    await manager.stop("alice")
    assert await state_of(sessions, "alice") == ServerState.STOPPED
    spawner.gate.set()
    await asyncio.sleep(0.01)
    assert spawner.running() == set() and not proxy.routes and manager.route_secret("alice") is None


async def test_deleting_a_user_during_their_start_leaves_nothing_running(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy, accounts: AccountService
) -> None:
    spawner.start_delay = 0.2
    await manager.start("alice", lab(settings))
    await asyncio.sleep(0.01)
    deletion = asyncio.create_task(manager.delete_user("alice", accounts.delete))
    await asyncio.sleep(0.01)
    restart = manager.start("alice", lab(settings))  # racing with the deletion: must not bring a server back
    await deletion
    with pytest.raises(Exception, match="does not exist"):
        await restart
    await asyncio.sleep(0.3)
    assert spawner.running() == set() and not proxy.routes
    assert accounts.get("alice") is None


async def test_a_crash_is_recorded_with_its_log_apart_from_the_message(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    await manager.start("alice", lab(settings))
    await finished(manager, "alice")
    spawner.crash("alice", exit_code=137, oom=True)
    await Reconciler(settings, manager).run_once()
    view = await manager.view("alice")
    assert view is not None and view.state == ServerState.STOPPED
    assert view.error is not None and "ran out of memory" in view.error and "log" not in view.error
    assert view.error_log == "fake server log"
    assert not proxy.routes and manager.route_secret("alice") is None


async def test_reconcile_leaves_a_start_in_flight_alone(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, sessions: Sessionmaker
) -> None:
    spawner.gate = asyncio.Event()
    await manager.start("alice", lab(settings))
    await Reconciler(settings, manager).run_once()
    assert await state_of(sessions, "alice") == ServerState.STARTING
    spawner.gate.set()
    assert (await finished(manager, "alice"))["ready"] is True


async def test_a_start_cut_short_by_a_restart_is_finished_cleanly(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    before = ServerManager(settings, sessions, spawner, proxy)
    spawner.gate = asyncio.Event()
    await before.start("alice", lab(settings))
    await asyncio.sleep(0.01)
    before._spawns.clear()  # the hub process died here: nothing runs the start any more
    after = ServerManager(settings, sessions, spawner, proxy)
    await Reconciler(settings, after).run_once()
    assert await state_of(sessions, "alice") == ServerState.STOPPED
    view = await after.view("alice")
    assert view is not None and "hub restarted" in (view.error or "")


async def test_the_culler_does_not_stop_a_server_that_changed_since_it_looked(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner
) -> None:
    await manager.start("alice", lab(settings))
    await finished(manager, "alice")
    view = await manager.view("alice")
    assert view is not None
    seen = Seen(view.state, view.started)
    await manager.stop("alice")
    await manager.start("alice", lab(settings))  # restarted meanwhile: fresh activity
    await finished(manager, "alice")
    assert not await manager.cull("alice", "idle", seen)
    assert spawner.running() == {"alice"}
    fresh = await manager.view("alice")
    assert fresh is not None and await manager.cull("alice", "idle", Seen(fresh.state, fresh.started))
    assert spawner.running() == set()


async def test_a_running_server_is_adopted_after_a_restart_with_its_route_rewritten(
    settings: Settings,
    sessions: Sessionmaker,
    accounts: AccountService,
    spawner: FakeSpawner,
    proxy: FakeProxy,
    manager: ServerManager,
) -> None:
    await manager.start("alice", lab(settings))
    await finished(manager, "alice")
    secret = manager.route_secret("alice")
    proxy.routes.clear()
    after = ServerManager(settings, sessions, spawner, proxy)
    await after.load()
    assert after.route_secret("alice") == secret  # forward auth can answer before reconcile ran
    await Reconciler(settings, after).run_once(rewrite_routes=True)
    assert names.user_slug("alice") in proxy.routes


def test_the_state_machine_refuses_paths_it_does_not_draw() -> None:
    with pytest.raises(server_states.InvalidTransition):
        server_states.check(ServerState.STOPPED, ServerState.RUNNING)
    with pytest.raises(server_states.InvalidTransition):
        server_states.check(ServerState.RUNNING, ServerState.STARTING)
    server_states.check(ServerState.RUNNING, ServerState.STOPPING)


async def test_a_start_after_an_interrupted_stop_says_to_wait_until_reconcile_finished_it(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    before = ServerManager(settings, sessions, spawner, proxy)
    await before.start("alice", lab(settings))
    await finished(before, "alice")
    await before._set(("alice", ""), ServerState.STOPPING)  # the hub died in the middle of a stop
    after = ServerManager(settings, sessions, spawner, proxy)
    with pytest.raises(Conflict, match="still being cleaned up"):
        await after.start("alice", lab(settings))
    await Reconciler(settings, after).run_once()
    await after.start("alice", lab(settings))
    assert (await finished(after, "alice"))["ready"] is True
    await after.shutdown()


async def test_the_route_is_written_while_the_server_boots(
    manager: ServerManager, settings: Settings, spawner: FakeSpawner, proxy: FakeProxy
) -> None:
    spawner.start_delay = 0.3  # the server's boot, after its address is known
    await manager.start("alice", lab(settings))
    await asyncio.sleep(0.1)
    progress = manager.progress("alice")
    assert progress is not None and progress.latest is not None and not progress.latest.ready
    assert names.user_slug("alice") in proxy.routes  # already live while the server is still booting
    assert (await finished(manager, "alice"))["ready"] is True


async def test_a_start_that_fails_after_its_route_was_written_leaves_no_route(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, proxy: FakeProxy
) -> None:
    from hub.errors import SpawnError

    class BreaksAfterItsAddress(FakeSpawner):
        async def start(self, request, report, address_known=None):  # type: ignore[no-untyped-def]
            handle = await super().start(request, report, address_known)
            raise SpawnError("Your server stopped while it was starting.", "exited during boot")
            return handle

    proxy.add_delay = 0.05
    manager = ServerManager(settings, sessions, BreaksAfterItsAddress(), proxy)
    await accounts.add(["alice"])
    await manager.start("alice", lab(settings))
    assert (await finished(manager, "alice")).get("failed") is True
    await asyncio.sleep(0.1)  # a route write still under way must not land after the clean-up
    assert not proxy.routes
    assert manager.route_secret("alice") is None
    await manager.shutdown()
