"""Groups: the one writer of memberships, its memory for the spawn form, and the rule of who may start an image."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.accounts import AccountService
from hub.config import ImageSpec
from hub.db import Sessionmaker, database
from hub.errors import BadRequest, Conflict, NotFound
from hub.groups import GroupService
from hub.image_choice import may_start, startable_images


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    async for factory in database(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite'}"):
        yield factory


@pytest.fixture
async def accounts(sessions: Sessionmaker) -> AccountService:
    service = AccountService(sessions)
    await service.load()
    await service.add(["alice", "bob", "carol"])
    return service


@pytest.fixture
async def groups(sessions: Sessionmaker, accounts: AccountService) -> GroupService:
    service = GroupService(sessions, accounts)
    await service.load()
    return service


async def test_groups_are_made_filled_emptied_and_deleted(groups: GroupService) -> None:
    await groups.create(["physics", "chemistry lab"], ["alice"])
    assert groups.groups_of("alice") == {"physics", "chemistry lab"}
    view = await groups.add_users("physics", ["bob", "BOB ", "alice"])  # names normalized; members twice: fine
    assert view.users == ["alice", "bob"]
    assert groups.groups_of("bob") == {"physics"}
    assert (await groups.remove_users("physics", ["alice", "carol"])).users == ["bob"]  # carol was not a member
    assert groups.groups_of("alice") == {"chemistry lab"}
    page = await groups.page()
    assert page.total == 2 and [group.name for group in page.groups] == ["chemistry lab", "physics"]
    await groups.delete("physics")
    assert groups.groups_of("bob") == frozenset()
    with pytest.raises(NotFound, match="There is no group physics"):
        await groups.get("physics")


async def test_mistakes_are_refused_whole_and_plainly(groups: GroupService) -> None:
    await groups.create(["physics"])
    with pytest.raises(Conflict, match="The group physics already exists"):
        await groups.create(["maths", "physics"])
    assert [group.name for group in (await groups.page()).groups] == ["physics"]  # maths was not made either
    with pytest.raises(BadRequest, match="There is no user nobody"):
        await groups.add_users("physics", ["alice", "nobody"])
    assert (await groups.get("physics")).users == []  # alice was not added either
    with pytest.raises(NotFound):
        await groups.add_users("maths", ["alice"])
    for bad in ["", "a/b", "x" * 256, "tab\there", " padded", "physics"[:0]]:
        with pytest.raises(BadRequest, match="cannot be used as a group name"):
            await groups.create([bad])
    with pytest.raises(BadRequest, match="must be a list"):
        await groups.create("physics")  # type: ignore[arg-type]  # a string is not a list of names
    await groups.create(["x" * 255, "Ünïcode & <b>"])


async def test_a_login_makes_memberships_exactly_what_the_method_reports(groups: GroupService) -> None:
    await groups.create(["staff"], ["alice"])
    await groups.sync_user("alice", frozenset({"physics", "maths", "bad/name"}))  # missing groups are made
    assert groups.groups_of("alice") == {"physics", "maths"}
    assert [group.name for group in (await groups.page()).groups] == ["maths", "physics", "staff"]
    await groups.sync_user("alice", frozenset({"maths"}))
    assert groups.groups_of("alice") == {"maths"}
    assert (await groups.get("physics")).users == []  # the group stays, empty
    await groups.sync_user("alice", frozenset())
    assert groups.groups_of("alice") == frozenset()


async def test_memory_follows_deleted_users_and_other_processes(
    sessions: Sessionmaker, accounts: AccountService, groups: GroupService
) -> None:
    await groups.create(["physics"], ["alice", "bob"])
    await accounts.delete("bob")  # memberships go by cascade; the listener reloads memory
    assert groups.groups_of("bob") == frozenset()
    assert (await groups.get("physics")).users == ["alice"]

    cli_accounts = AccountService(sessions)  # another process (the command line) on the same database
    await cli_accounts.load()
    await GroupService(sessions, cli_accounts).add_users("physics", ["carol"])
    await cli_accounts.delete("alice")
    assert await accounts.sync()  # the running hub notices the new generation and reloads
    assert groups.groups_of("carol") == {"physics"}
    assert groups.groups_of("alice") == frozenset()


def test_who_may_start_an_image() -> None:
    open_image = ImageSpec(name="lab", image="lab:1")
    kept = ImageSpec(name="gpu", image="gpu:1", allowed_groups=["physics", "staff"])
    assert may_start(open_image, frozenset(), admin=False)
    assert not may_start(kept, frozenset(), admin=False)
    assert not may_start(kept, frozenset({"maths"}), admin=False)
    assert may_start(kept, frozenset({"maths", "staff"}), admin=False)
    assert may_start(kept, frozenset(), admin=True)
    assert startable_images([kept, open_image], frozenset(), admin=False) == [open_image]
