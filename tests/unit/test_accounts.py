"""The accounts service: every write goes through it, and a second process's writes reach a running hub."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub import accounts as accounts_module
from hub.accounts import AccountService
from hub.auth.native import set_password
from hub.db import Sessionmaker, database
from hub.errors import Conflict
from hub.tokens import TokenStore


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    async for factory in database(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite'}"):
        yield factory


async def test_a_change_made_by_another_process_reaches_the_running_hub(sessions: Sessionmaker) -> None:
    hub, cli = AccountService(sessions), AccountService(sessions)  # two processes, one database
    hub_tokens = TokenStore(sessions, hub)
    hub.on_change(hub_tokens.load)
    await cli.load()
    await cli.add(["root", "alice"], admin=False)
    await cli.set_admin("root", True)
    _, token = await TokenStore(sessions, cli).create("root", "script")
    await hub.load()
    await hub_tokens.load()
    assert hub.get("root") is not None and hub.get("root").admin  # type: ignore[union-attr]
    assert (await hub_tokens.check(token)) is not None

    assert not await hub.sync()  # nothing changed: nothing reloaded
    await cli.set_admin("root", False)
    assert await hub.sync()
    assert not hub.get("root").admin  # type: ignore[union-attr]
    owner = await hub_tokens.check(token)
    assert owner is not None and not owner.admin  # a token's rights are its owner's, as they are now

    await cli.delete("root")
    assert await hub.sync()
    assert hub.get("root") is None
    assert await hub_tokens.check(token) is None


async def test_a_new_password_ends_earlier_sessions(sessions: Sessionmaker) -> None:
    accounts = AccountService(sessions)
    await accounts.load()
    await set_password(accounts, "alice", "first password")
    before = accounts.get("alice")
    assert before is not None
    await set_password(accounts, "alice", "second password", create=False)
    after = accounts.get("alice")
    assert after is not None and after.sessions_valid_after > before.sessions_valid_after


async def test_a_name_made_again_accepts_no_session_of_the_old_account(sessions: Sessionmaker) -> None:
    accounts = AccountService(sessions)
    await accounts.load()
    await accounts.add_one("jsmith")
    old = accounts.get("jsmith")
    await accounts.delete("jsmith")
    await accounts.add_one("jsmith")
    new = accounts.get("jsmith")
    assert old is not None and new is not None and new.sessions_valid_after > old.sessions_valid_after
    with pytest.raises(Conflict):
        await accounts.add_one("jsmith")


async def test_a_flood_of_unknown_tokens_costs_no_query_of_its_own(sessions: Sessionmaker) -> None:
    accounts = AccountService(sessions)
    await accounts.load()
    tokens = TokenStore(sessions, accounts)
    await tokens.load()
    syncs = 0
    real_sync = accounts.sync

    async def counted_sync() -> bool:
        nonlocal syncs
        syncs += 1
        return await real_sync()

    accounts.sync = counted_sync  # type: ignore[method-assign]
    results = await asyncio.gather(*(tokens.check(f"junk-{number}") for number in range(2000)))
    assert results == [None] * 2000
    assert syncs <= 2  # shared, rate-limited look for outside changes; no query per token


async def hub_and_cli(sessions: Sessionmaker, tmp_path: Path) -> tuple[AccountService, TokenStore, AccountService]:
    """A running hub's accounts and tokens, and a command line's accounts, on one database and data folder."""
    hub = AccountService(sessions, tmp_path / "accounts.changed")
    await hub.load()
    hub_tokens = TokenStore(sessions, hub)
    hub.on_change(hub_tokens.load)
    await hub_tokens.load()
    cli = AccountService(sessions, tmp_path / "accounts.changed")
    await cli.load()
    return hub, hub_tokens, cli


async def test_a_token_made_by_another_process_works_at_once(sessions: Sessionmaker, tmp_path: Path) -> None:
    hub, hub_tokens, cli = await hub_and_cli(sessions, tmp_path)
    await cli.add(["script"])
    _, token = await TokenStore(sessions, cli).create("script", "made by the CLI")
    owner = await hub_tokens.check(token)
    assert owner is not None and owner.username == "script"


async def test_a_token_made_while_the_hub_was_already_looking_still_works_at_once(
    sessions: Sessionmaker, tmp_path: Path
) -> None:
    hub, hub_tokens, cli = await hub_and_cli(sessions, tmp_path)
    await cli.add(["script"])
    await hub.sync()
    gate = asyncio.Event()
    real_sync = hub.sync

    async def slow_first_look() -> bool:  # the periodic look began before the CLI's commit
        changed = await real_sync()
        await gate.wait()
        return changed

    hub.sync = slow_first_look  # type: ignore[method-assign]
    hub._last_check = 0.0  # due for a look
    looking = asyncio.ensure_future(hub.refresh_if_stale())
    await asyncio.sleep(0.01)
    hub.sync = real_sync  # type: ignore[method-assign]
    _, token = await TokenStore(sessions, cli).create("script", "made by the CLI")
    checking = asyncio.ensure_future(hub_tokens.check(token))
    await asyncio.sleep(0.01)
    gate.set()
    await looking
    owner = await checking
    assert owner is not None and owner.username == "script"


async def test_accounts_from_before_login_methods_keep_their_way_of_logging_in(sessions: Sessionmaker) -> None:
    from sqlalchemy import update

    from hub.models import User

    before = AccountService(sessions)
    await set_password(before, "local", "a long password")  # a built-in account with a password
    await before.add(["sso-person"])  # an account made for a login without a password (PAM, OIDC)
    async with sessions.begin() as session:  # as the upgrade leaves them: no method yet
        await session.execute(update(User).values(auth_method=None))
    hub = AccountService(sessions, default_method="university")  # upgraded straight to [oidc, native]
    await hub.load()
    assert await hub.claim_unowned(password_method="guests") == 2
    assert (hub.get("local").method, hub.get("sso-person").method) == ("guests", "university")  # type: ignore[union-attr]
    assert hub.orphans({"university"}) == ["local"]


async def test_an_account_is_bound_to_the_providers_person(sessions: Sessionmaker) -> None:
    from hub.accounts import OtherPerson

    accounts = AccountService(sessions, default_method="github")
    await accounts.ensure("alice", logged_in=True, method="github", subject="1001")
    assert await accounts.ensure("alice", logged_in=True, method="github", subject="1001") is not None
    with pytest.raises(OtherPerson):  # the GitHub name alice changed hands: another person now holds it
        await accounts.ensure("alice", logged_in=True, method="github", subject="2002")
    await accounts.set_method("alice", "github")  # an admin's move unbinds: the next login binds anew
    assert await accounts.ensure("alice", logged_in=True, method="github", subject="2002") is not None


async def test_a_token_made_during_the_periodic_look_works_before_that_look_ends(
    sessions: Sessionmaker, tmp_path: Path
) -> None:
    """The periodic look has read the new generation but is still reloading the token map when the token comes:
    the check waits for that reload instead of skipping a look it thinks was just made."""
    hub, hub_tokens, cli = await hub_and_cli(sessions, tmp_path)
    await cli.add(["script"])
    await hub.sync()
    _, token = await TokenStore(sessions, cli).create("script", "made by the CLI")
    gate = asyncio.Event()
    real_load = hub_tokens.load

    async def slow_token_reload() -> None:
        await gate.wait()
        await real_load()

    hub._listeners = [slow_token_reload]  # the token map's reload, held back
    periodic = asyncio.ensure_future(hub.run_sync(interval=0))
    await asyncio.sleep(0.05)  # the periodic look is under way: generation read, token map not yet reloaded
    checking = asyncio.ensure_future(hub_tokens.check(token))
    await asyncio.sleep(0.05)
    gate.set()
    owner = await checking
    periodic.cancel()
    assert owner is not None and owner.username == "script"


async def test_the_periodic_look_sees_signalled_changes_at_once_and_others_later(
    sessions: Sessionmaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that touches the signal file (the command line on this host) reaches the running hub at the next
    look; one that cannot (a command on another machine, same database) at the slower unsignalled look."""
    monkeypatch.setattr(accounts_module, "COARSE_MTIME_SECONDS", 0.2)
    hub, _, cli = await hub_and_cli(sessions, tmp_path)
    elsewhere = AccountService(sessions)  # no signal file: a writer on another machine
    await elsewhere.load()
    periodic = asyncio.ensure_future(hub.run_sync(interval=0.02, unsignalled=2.0))
    try:
        await cli.add(["near"])
        await asyncio.sleep(0.3)
        assert hub.get("near") is not None
        await elsewhere.add(["far"])
        await asyncio.sleep(0.3)
        assert hub.get("far") is None  # not asked yet: nothing moved the signal file
        await asyncio.sleep(2.2)
        assert hub.get("far") is not None
    finally:
        periodic.cancel()


async def test_a_second_change_in_the_same_timestamp_tick_is_not_missed(sessions: Sessionmaker, tmp_path: Path) -> None:
    """On a filesystem with coarse timestamps, a second write right after the first leaves the signal file's time
    unchanged: the hub still reads the database for a while after the file last moved."""
    hub, _, cli = await hub_and_cli(sessions, tmp_path)
    periodic = asyncio.ensure_future(hub.run_sync(interval=0.02, unsignalled=60.0))
    try:
        await cli.add(["first"])
        await asyncio.sleep(0.2)
        assert hub.get("first") is not None
        tick = (tmp_path / "accounts.changed").stat().st_mtime_ns
        await cli.add(["second"])
        os.utime(tmp_path / "accounts.changed", ns=(tick, tick))  # what a coarse clock leaves
        await asyncio.sleep(0.3)
        assert hub.get("second") is not None
    finally:
        periodic.cancel()
