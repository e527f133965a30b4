"""Groups of users: the one writer of groups and memberships, and an in-memory view for the spawn form.

Admins manage groups in the panel and through the REST API; a login method with ``manage_groups`` makes a
person's memberships exactly what it reports at each login (``sync_user``). The spawn form and the start
endpoints ask ``groups_of(name)`` many times, so memberships are kept in memory: read at start, changed
after each write made here, and read again when accounts change elsewhere (the accounts generation, see
accounts.py), which also covers a user deleted with the command line (memberships go by database cascade).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.accounts import AccountService, mark_changed
from hub.db import Sessionmaker
from hub.errors import BadRequest, Conflict, NotFound
from hub.i18n import L_, N_
from hub.models import Group, User, user_groups
from hub.names import normalize_username, truncate

log = logging.getLogger(__name__)
MAX_GROUP_NAME = 255
GROUP_RULES = L_("A group name has 1 to 255 printable characters, no '/' and no spaces at either end.")


def validate_group_name(name: object) -> str:
    """Return the name if it can be a group's name, else raise BadRequest."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_GROUP_NAME
        or not name.isprintable()
        or "/" in name
        or name != name.strip()
    ):
        shown = truncate(name) if isinstance(name, str) else type(name).__name__
        raise BadRequest(L_("%(name)r cannot be used as a group name. %(rules)s", name=shown, rules=GROUP_RULES))
    return name


def group_names(raw: object, what: str = "groups") -> list[str]:
    """A list of group names from a request body (validated, duplicates dropped, order kept)."""
    if not isinstance(raw, list):
        raise BadRequest(L_("%(what)s must be a list of group names.", what=what))
    return list(dict.fromkeys(validate_group_name(name) for name in raw))


def user_names(raw: object) -> list[str]:
    """A list of user names from a request body or form (normalized, duplicates dropped, order kept)."""
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise BadRequest('users must be a list of user names, as in {"users": ["alice", "bob"]}.')
    return list(dict.fromkeys(normalize_username(name) for name in raw if name.strip()))


def as_list(value: object) -> object:
    """A list from a list, tuple or set; anything else (a string, a number) as it is, for the checks to refuse."""
    return list(value) if isinstance(value, list | tuple | set | frozenset) else value


@dataclass(frozen=True, slots=True)
class GroupView:
    name: str
    users: list[str]
    """Member names, sorted."""
    created: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class GroupPage:
    groups: list[GroupView]
    total: int


class GroupService:
    def __init__(self, sessions: Sessionmaker, accounts: AccountService) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self._of_user: dict[str, frozenset[str]] = {}
        self._lock = asyncio.Lock()  # loads and writes never overlap, so a load cannot undo a newer write
        accounts.on_change(self.load)  # a user deleted here or elsewhere: their memberships went by cascade

    # -- reading -------------------------------------------------------------------------------------
    async def load(self) -> None:
        """Read groups and memberships into memory (at start and after outside changes)."""
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        query = (
            select(User.name, Group.name)
            .join(user_groups, user_groups.c.user_id == User.id)
            .join(Group, Group.id == user_groups.c.group_id)
        )
        members: dict[str, set[str]] = {}
        async with self.sessions() as session:
            for user, group in (await session.execute(query)).all():
                members.setdefault(user, set()).add(group)
        self._of_user = {user: frozenset(groups) for user, groups in members.items()}

    def groups_of(self, username: str) -> frozenset[str]:
        """The names of the user's groups (from memory)."""
        return self._of_user.get(username, frozenset())

    async def page(self, offset: int = 0, limit: int = 10**9) -> GroupPage:
        """Groups sorted by name, with their members (from the database)."""
        async with self.sessions() as session:
            total = (await session.execute(select(func.count(Group.id)))).scalar_one()
            groups = list(
                (await session.execute(select(Group).order_by(Group.name).offset(offset).limit(limit))).scalars()
            )
            members = await self._members(session, [group.id for group in groups])
        return GroupPage([GroupView(g.name, members.get(g.id, []), g.created) for g in groups], total)

    async def get(self, name: str) -> GroupView:
        async with self.sessions() as session:
            group = await self._existing(session, name)
            members = await self._members(session, [group.id])
        return GroupView(group.name, members.get(group.id, []), group.created)

    @staticmethod
    async def _members(session: AsyncSession, group_ids: list[int]) -> dict[int, list[str]]:
        if not group_ids:
            return {}
        query = (
            select(user_groups.c.group_id, User.name)
            .join(User, User.id == user_groups.c.user_id)
            .where(user_groups.c.group_id.in_(group_ids))
            .order_by(User.name)
        )
        members: dict[int, list[str]] = {}
        for group_id, user in (await session.execute(query)).all():
            members.setdefault(group_id, []).append(user)
        return members

    # -- writing -------------------------------------------------------------------------------------
    async def create(self, names: Iterable[str], users: Iterable[str] = ()) -> list[GroupView]:
        """Create groups (all or none: any existing one is a 409), optionally with first members."""
        wanted = group_names(as_list(names))
        if not wanted:
            raise BadRequest(N_("Give at least one group name."))
        members = user_names(as_list(users))
        async with self._lock:
            async with self.sessions.begin() as session:
                taken = list((await session.execute(select(Group.name).where(Group.name.in_(wanted)))).scalars())
                if taken:
                    raise Conflict(L_("The group %(name)s already exists.", name=taken[0]))
                made = [Group(name=name) for name in wanted]
                session.add_all(made)
                await session.flush()
                ids = await self._user_ids(session, members)
                if ids:
                    rows = [{"user_id": uid, "group_id": group.id} for group in made for uid in ids.values()]
                    await session.execute(insert(user_groups), rows)
                await mark_changed(session)
            await self._refresh(members)
        log.info("created group(s) %s", ", ".join(wanted))
        return [GroupView(group.name, sorted(members), group.created) for group in made]

    async def delete(self, name: str) -> None:
        async with self._lock:
            async with self.sessions.begin() as session:
                group = await self._existing(session, name)
                members = await self._member_names(session, group.id)
                await session.delete(group)
                await mark_changed(session)
            await self._refresh(members)
        log.info("deleted group %s", name)

    async def add_users(self, name: str, users: Iterable[str]) -> GroupView:
        """Add members (already there: fine); an unknown user refuses the whole request."""
        members = user_names(as_list(users))
        async with self._lock:
            async with self.sessions.begin() as session:
                group = await self._existing(session, name)
                ids = await self._user_ids(session, members)
                present = set(await self._member_names(session, group.id))
                new = [uid for user, uid in ids.items() if user not in present]
                if new:
                    await session.execute(insert(user_groups), [{"user_id": uid, "group_id": group.id} for uid in new])
                    await mark_changed(session)
            await self._refresh(members)
        log.info("added %s to group %s", ", ".join(members) or "nobody", name)
        return await self.get(name)

    async def remove_users(self, name: str, users: Iterable[str]) -> GroupView:
        """Remove members (not a member: fine); an unknown user refuses the whole request."""
        members = user_names(as_list(users))
        async with self._lock:
            async with self.sessions.begin() as session:
                group = await self._existing(session, name)
                ids = await self._user_ids(session, members)
                if ids:
                    gone = user_groups.c.user_id.in_(list(ids.values()))
                    await session.execute(delete(user_groups).where(user_groups.c.group_id == group.id, gone))
                    await mark_changed(session)
            await self._refresh(members)
        log.info("removed %s from group %s", ", ".join(members) or "nobody", name)
        return await self.get(name)

    async def sync_user(self, username: str, groups: frozenset[str]) -> None:
        """Make the user's memberships exactly ``groups`` (creating missing groups): a login with manage_groups.

        Unusable names (too long, with '/', unprintable) are left out with a warning: a login is not refused
        for a group name the hub cannot keep."""
        usable: set[str] = set()
        for name in groups:
            try:
                usable.add(validate_group_name(name))
            except BadRequest:
                log.warning("login of %s: ignoring the unusable group name %r", username, truncate(str(name)))
        if usable == self.groups_of(username):
            return  # the common login: nothing changed
        async with self._lock:
            async with self.sessions.begin() as session:
                user_id = (await session.execute(select(User.id).where(User.name == username))).scalar_one_or_none()
                if user_id is None:
                    raise NotFound(L_("There is no user %(name)s.", name=username))
                found = select(Group.name, Group.id).where(Group.name.in_(usable))
                existing = {name: gid for name, gid in (await session.execute(found)).all()}
                missing = [Group(name=name) for name in sorted(usable - set(existing))]
                session.add_all(missing)
                await session.flush()
                existing.update({group.name: group.id for group in missing})
                wanted = set(existing.values())
                mine = select(user_groups.c.group_id).where(user_groups.c.user_id == user_id)
                current = set((await session.execute(mine)).scalars())
                if current - wanted:
                    left = user_groups.c.group_id.in_(list(current - wanted))
                    await session.execute(delete(user_groups).where(user_groups.c.user_id == user_id, left))
                if wanted - current:
                    rows = [{"user_id": user_id, "group_id": gid} for gid in sorted(wanted - current)]
                    await session.execute(insert(user_groups), rows)
                if missing or current != wanted:
                    await mark_changed(session)
            await self._refresh([username])
        if missing:
            log.info("login of %s created group(s) %s", username, ", ".join(group.name for group in missing))

    async def _refresh(self, usernames: Iterable[str]) -> None:
        """Read the memberships of these users again (after a committed write; the caller holds the lock),
        and tell other processes on this host (a second hub) that something changed."""
        names = list(usernames)
        if names:
            query = (
                select(User.name, Group.name)
                .join(user_groups, user_groups.c.user_id == User.id)
                .join(Group, Group.id == user_groups.c.group_id)
                .where(User.name.in_(names))
            )
            found: dict[str, set[str]] = {name: set() for name in names}
            async with self.sessions() as session:
                for user, group in (await session.execute(query)).all():
                    found[user].add(group)
            for user, groups in found.items():
                if groups:
                    self._of_user[user] = frozenset(groups)
                else:
                    self._of_user.pop(user, None)
        self.accounts.signal()

    @staticmethod
    async def _existing(session: AsyncSession, name: str) -> Group:
        group = (await session.execute(select(Group).where(Group.name == name))).scalar_one_or_none()
        if group is None:
            raise NotFound(L_("There is no group %(name)s.", name=truncate(name)))
        return group

    @staticmethod
    async def _user_ids(session: AsyncSession, names: list[str]) -> dict[str, int]:
        if not names:
            return {}
        query = select(User.name, User.id).where(User.name.in_(names))
        found = {name: uid for name, uid in (await session.execute(query)).all()}
        unknown = [truncate(name) for name in names if name not in found]
        if len(unknown) == 1:
            raise BadRequest(L_("There is no user %(name)s.", name=unknown[0]))
        if unknown:
            raise BadRequest(L_("There are no users %(names)s.", names=", ".join(unknown)))
        return found

    @staticmethod
    async def _member_names(session: AsyncSession, group_id: int) -> list[str]:
        query = select(User.name).join(user_groups, user_groups.c.user_id == User.id)
        return list((await session.execute(query.where(user_groups.c.group_id == group_id))).scalars())
