"""Importing a roster (hub/roster.py) into the database: all of it in one transaction, or nothing.

New built-in accounts get a random first password (hashed before the transaction begins, so a busy
password pool refuses the import before anything changed) and must choose their own at their first login.
The plan is made again inside the transaction, from what the database holds then: the preview an admin saw
may be minutes old. Afterwards the accounts and the group memberships kept in memory are read again, and a
new accounts generation tells other processes (the running hub, when this is ``hub user import``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.accounts import AccountService, mark_changed
from hub.auth.native import hash_password, password_problem
from hub.auth.pool import WORKERS
from hub.db import Sessionmaker
from hub.errors import Conflict
from hub.groups import GroupService
from hub.i18n import L_
from hub.models import Group, User, user_groups
from hub.roster import Member, Plan, Roster, plan_import

log = logging.getLogger(__name__)
NAME_BATCH = 500
"""Names per ``IN (...)`` query (SQLite allows some thousands of parameters)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    plan: Plan
    passwords: tuple[tuple[str, str], ...]
    """(name, first password) of each new built-in account, in roster order; shown once, never stored."""


def first_password(min_length: int) -> str:
    """A random password of at least 16 characters (more when the hub's minimum is higher); it never starts
    with '-', which a spreadsheet opening the passwords file would take for a formula."""
    # token_urlsafe(n) has ceil(4n/3) characters: n = ceil(3/4 of the minimum) reaches it without passing the
    # 1024-character ceiling of password_problem (n = the minimum itself went past it: a loop for ever)
    size = max(12, math.ceil(min_length * 3 / 4))
    while True:
        password = secrets.token_urlsafe(size)
        if not password.startswith("-") and password_problem(password, min_length) is None:
            return password


def batches(names: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(names), NAME_BATCH):
        yield names[start : start + NAME_BATCH]


async def members_of(session: AsyncSession, names: list[str]) -> dict[str, Member]:
    """The users among ``names`` as they are now: admin flag and group names."""
    found: dict[str, Member] = {}
    for batch in batches(names):
        users = (await session.execute(select(User.name, User.admin).where(User.name.in_(batch)))).all()
        memberships = (
            await session.execute(
                select(User.name, Group.name)
                .join(user_groups, user_groups.c.user_id == User.id)
                .join(Group, Group.id == user_groups.c.group_id)
                .where(User.name.in_(batch))
            )
        ).all()
        groups: dict[str, set[str]] = {}
        for user, group in memberships:
            groups.setdefault(user, set()).add(group)
        found.update({name: Member(bool(admin), frozenset(groups.get(name, ()))) for name, admin in users})
    return found


async def group_names(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(Group.name).order_by(Group.name))).scalars())


async def plan_now(session: AsyncSession, roster: Roster, me: str | None) -> Plan:
    names = [row.name for row in roster.rows]
    return plan_import(roster, await members_of(session, names), await group_names(session), me)


async def preview(sessions: Sessionmaker, roster: Roster, me: str | None = None) -> Plan:
    """What the import would change now (RosterProblems when a row cannot be imported)."""
    async with sessions() as session:
        return await plan_now(session, roster, me)


async def hash_all(passwords: dict[str, str]) -> dict[str, str]:
    """argon2 hashes of the passwords, a few at a time (the password pool has few threads and a short queue)."""
    hashes: dict[str, str] = {}
    names = list(passwords)
    for start in range(0, len(names), WORKERS):
        chunk = names[start : start + WORKERS]
        done = await asyncio.gather(*(hash_password(passwords[name]) for name in chunk))
        hashes.update(zip(chunk, done, strict=True))
    return hashes


async def apply_import(
    sessions: Sessionmaker,
    accounts: AccountService,
    roster: Roster,
    *,
    method: str,
    native: bool,
    min_password_length: int,
    me: str | None = None,
    groups: GroupService | None = None,
) -> ImportResult:
    """Import the roster in one transaction: new accounts of ``method`` (``native``: with first passwords they
    must change), admin flags and memberships as the roster says, missing groups created."""
    expected = await preview(sessions, roster, me)
    fresh = {row.name: first_password(min_password_length) for row in expected.new} if native else {}
    hashes = await hash_all(fresh)

    async with sessions.begin() as session:
        plan = await plan_now(session, roster, me)
        missing = [row.name for row in plan.new if native and row.name not in hashes]
        if missing:  # deleted since the preview a moment ago: their passwords were not made
            raise Conflict(
                L_("The users changed while importing (%(missing)s was deleted). Please try again.", missing=missing[0])
            )
        made_groups = [Group(name=name) for name in plan.new_groups]
        session.add_all(made_groups)
        now = time.time()
        made_users = [
            User(
                name=row.name,
                admin=bool(row.admin),
                sessions_valid_after=now,
                auth_method=method,
                password_hash=hashes.get(row.name),
                password_must_change=native,
            )
            for row in plan.new
        ]
        session.add_all(made_users)
        await session.flush()
        await write_changes(session, plan)
        if plan.changes_anything or plan.new_groups:
            await mark_changed(session)
    await accounts.load()  # the accounts in memory, as after any write of accounts.py
    if groups is not None:
        await groups.load()  # the memberships the spawn form reads
    accounts.signal()  # other processes on this host (a running hub, when this is the CLI) look at once
    log.info("imported a roster: %s", plan.summary())
    passwords = tuple((row.name, fresh[row.name]) for row in plan.new if row.name in fresh)
    return ImportResult(plan, passwords)


async def write_changes(session: AsyncSession, plan: Plan) -> None:
    """Admin flags and memberships of the plan (its new users and groups are already flushed)."""
    names = [row.name for row in plan.new] + [change.name for change in plan.changed]
    user_ids: dict[str, int] = {}
    for batch in batches(names):
        user_ids.update((await session.execute(select(User.name, User.id).where(User.name.in_(batch)))).all())
    group_ids = dict((await session.execute(select(Group.name, Group.id))).all())
    joins = [(row.name, group) for row in plan.new for group in row.groups or ()]
    joins += [(change.name, group) for change in plan.changed for group in change.joins]
    if joins:
        rows = [{"user_id": user_ids[user], "group_id": group_ids[group]} for user, group in joins]
        await session.execute(insert(user_groups), rows)
    for change in plan.changed:
        if change.leaves:
            leaving = user_groups.c.group_id.in_([group_ids[group] for group in change.leaves])
            await session.execute(delete(user_groups).where(user_groups.c.user_id == user_ids[change.name], leaving))
    for admin in (True, False):
        flagged = [change.name for change in plan.changed if change.admin is admin]
        for batch in batches(flagged):
            await session.execute(update(User).where(User.name.in_(batch)).values(admin=admin))


async def roster_rows(sessions: Sessionmaker, names: Iterable[str] | None = None) -> list[tuple[str, bool, list[str]]]:
    """(name, admin, groups) of the named users (all users when ``names`` is None), sorted by name."""
    async with sessions() as session:
        if names is None:
            wanted = list((await session.execute(select(User.name))).scalars())
        else:
            wanted = list(dict.fromkeys(names))
        members = await members_of(session, wanted)
    return [(name, members[name].admin, sorted(members[name].groups)) for name in sorted(members)]
