"""Sharing a server: the one writer of shares and share codes, and the in-memory answer to "may X use it?".

An owner shares one of their servers with named users or groups, optionally until a time, and revokes
it; or makes a share code (a link) that anyone logged in may accept, until the code expires. Forward auth
asks ``may_use`` on every request, so the shares are kept in memory: read at start, changed after each
write made here, and read again when accounts change (a deleted user or group took their shares with
them, by database cascade). Group shares are checked against the groups' current members
(``groups_of``), so leaving a group ends the access at once.

After every change the listeners run (the WebSocket relay closes what may no longer be open).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import names
from hub.accounts import AccountService
from hub.config import AuthSection
from hub.db import Sessionmaker, get_user
from hub.errors import BadRequest, Forbidden, NotFound
from hub.i18n import L_, N_
from hub.models import Group, Server, ServerState, Share, ShareCode, User, user_groups, utcnow
from hub.tokens import aware

log = logging.getLogger(__name__)
Key = tuple[str, str]
"""(owner, server name); "" is the default server."""
Listener = Callable[[], Awaitable[None]]
CODE_DEFAULT_SECONDS = 86400
CODE_MIN_SECONDS = 60
CODE_MAX_SECONDS = 365 * 86400


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def access_scope(owner: str, server: str) -> str:
    """JupyterHub's name of the one permission a share gives."""
    return f"access:servers!server={owner}/{server}"


@dataclass(frozen=True, slots=True)
class ShareView:
    id: int
    owner: str
    server: str
    user: str | None
    group: str | None
    created: dt.datetime
    expires_at: dt.datetime | None
    ready: bool
    """Whether the shared server runs right now."""

    @property
    def grantee(self) -> str:
        return L_("user %(name)s", name=self.user) if self.user else L_("group %(name)s", name=self.group)


@dataclass(frozen=True, slots=True)
class CodeView:
    id: int
    owner: str
    server: str
    created: dt.datetime
    expires_at: dt.datetime
    exchange_count: int
    last_exchanged_at: dt.datetime | None
    ready: bool


def parse_until(raw: object) -> dt.datetime | None:
    """When a share ends, from a form's date (``2031-05-01``: the share lasts through that day, UTC) or an
    ISO 8601 time (``2031-05-01T12:00:00Z``); empty or None: no end. Anything else is a 400."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise BadRequest(N_("expires_at must be a date (2031-05-01) or an ISO 8601 time."))
    try:
        if len(raw) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC) + dt.timedelta(days=1)
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            L_("%(raw)r is not a date (2031-05-01) or an ISO 8601 time.", raw=names.truncate(raw))
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def expired(moment: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    moment = aware(moment)
    return moment is not None and moment <= (now or utcnow())


class SharingService:
    def __init__(
        self,
        sessions: Sessionmaker,
        accounts: AccountService,
        auth: AuthSection,
        groups_of: Callable[[str], frozenset[str]],
        enabled: bool = True,
    ) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self.enabled = enabled
        """sharing.enabled: when off, nobody may share, and shares kept from before open nothing."""
        self.auth = auth
        self.groups_of = groups_of
        self._users: dict[Key, dict[str, dt.datetime | None]] = {}
        self._groups: dict[Key, dict[str, dt.datetime | None]] = {}
        self._writes = 0
        """Counts changes to the tables above, so a load that read the database meanwhile reads again."""
        self._listeners: list[Listener] = []
        accounts.on_change(self.load)

    # -- reading (from memory) -----------------------------------------------------------------
    def on_change(self, listener: Listener) -> None:
        """Call ``listener`` after shares changed (revoked, expired by a reload, accounts changed)."""
        self._listeners.append(listener)

    def may_use(self, user: str, owner: str, server: str = "", now: dt.datetime | None = None) -> bool:
        """Whether a share (to the user, or to one of their groups) lets ``user`` use the server now."""
        key = (owner, server)
        if user == owner or not self.enabled:
            return False
        until = self._users.get(key, {})
        if user in until and not expired(until[user], now):
            return True
        groups = self._groups.get(key)
        if groups:
            for group in self.groups_of(user):
                if group in groups and not expired(groups[group], now):
                    return True
        return False

    def has_shares(self, owner: str, server: str = "") -> bool:
        """Whether anyone (a user or a group) holds a share of the server, expired or not."""
        key = (owner, server)
        return bool(self._users.get(key)) or bool(self._groups.get(key))

    def may_reach(self, user: str, owner: str, server: str = "") -> bool:
        """Whether ``user`` may use the server at all: as its owner, an admin with ``admin_access``, an account
        of ``server_access_accounts``, or through a share (the rule the WebSocket relay re-checks)."""
        account = self.accounts.get(user)
        if account is None or account.password_must_change:
            return False
        if user == owner or (account.admin and self.auth.admin_access) or user in self.auth.server_access_accounts:
            return True
        return self.may_use(user, owner, server)

    async def load(self) -> None:
        """Read every share into memory (at start, and after accounts changed anywhere)."""
        query = (
            select(User.name, Server.name, Share.expires_at, Share.user_id, Share.group_id)
            .join(Server, Server.id == Share.server_id)
            .join(User, User.id == Server.user_id)
        )
        for _ in range(10):  # a share granted or revoked while the database was read: read again
            seen = self._writes
            async with self.sessions() as session:
                rows = (await session.execute(query)).all()
                user_names = {uid: name for uid, name in (await session.execute(select(User.id, User.name))).all()}
                group_names = {gid: name for gid, name in (await session.execute(select(Group.id, Group.name))).all()}
            if self._writes == seen:
                break
        else:
            log.warning("shares kept changing while they were read; the next reload brings them up to date")
        users: dict[Key, dict[str, dt.datetime | None]] = {}
        groups: dict[Key, dict[str, dt.datetime | None]] = {}
        for owner, server, until, user_id, group_id in rows:
            if user_id is not None and user_id in user_names:
                users.setdefault((owner, server), {})[user_names[user_id]] = aware(until)
            elif group_id is not None and group_id in group_names:
                groups.setdefault((owner, server), {})[group_names[group_id]] = aware(until)
        self._users, self._groups = users, groups
        await self._changed()

    async def _changed(self) -> None:
        for listener in self._listeners:
            try:
                await listener()
            except Exception:
                log.exception("a sharing listener failed")

    # -- reading (from the database) --------------------------------------------------------------
    async def shares(
        self, *, owner: str | None = None, server: str | None = None, grantee: str | None = None
    ) -> list[ShareView]:
        """Shares that have not expired, oldest first: of one owner (and server), or those that reach
        ``grantee`` (directly or through their groups), or all of them."""
        owners = User.__table__.alias("owners")
        grantees = User.__table__.alias("grantees")
        query = (
            select(Share, owners.c.name, Server.name, Server.state, grantees.c.name, Group.name)
            .join(Server, Server.id == Share.server_id)
            .join(owners, owners.c.id == Server.user_id)
            .outerjoin(grantees, grantees.c.id == Share.user_id)
            .outerjoin(Group, Group.id == Share.group_id)
            .order_by(Share.id)
        )
        if owner is not None:
            query = query.where(owners.c.name == owner)
        if server is not None:
            query = query.where(Server.name == server)
        if grantee is not None:
            mine = select(user_groups.c.group_id).join(User, User.id == user_groups.c.user_id)
            query = query.where(
                or_(grantees.c.name == grantee, Share.group_id.in_(mine.where(User.name == grantee)))
            ).where(owners.c.name != grantee)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        now = utcnow()
        return [
            ShareView(
                share.id,
                owner_name,
                server_name,
                user_name,
                group_name,
                aware(share.created) or now,
                aware(share.expires_at),
                state == ServerState.RUNNING,
            )
            for share, owner_name, server_name, state, user_name, group_name in rows
            if not expired(share.expires_at, now)
        ]

    async def codes(self, owner: str, server: str) -> list[CodeView]:
        """The server's share codes that have not expired (never the codes themselves: only hashes are kept)."""
        async with self.sessions() as session:
            row = await self._server(session, owner, server)
            found = (
                await session.execute(select(ShareCode).where(ShareCode.server_id == row.id).order_by(ShareCode.id))
            ).scalars()
            now = utcnow()
            return [self._code_view(code, owner, row) for code in found if not expired(code.expires_at, now)]

    async def code_info(self, code: str) -> CodeView:
        """What a code would share (for the accept page); NotFound if it is unknown or expired."""
        async with self.sessions() as session:
            found = await self._live_code(session, code)
            server = await session.get(Server, found.server_id)
            owner = await session.get(User, server.user_id) if server else None
            if server is None or owner is None:
                raise NotFound(N_("This share link is not valid (any more)."))
            return self._code_view(found, owner.name, server)

    def require_enabled(self) -> None:
        if not self.enabled:
            raise Forbidden(
                N_("Sharing servers is turned off on this hub."), "sharing refused: sharing.enabled is false"
            )

    # -- writing ---------------------------------------------------------------------------------
    async def grant(
        self,
        owner: str,
        server: str,
        *,
        user: str | None = None,
        group: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> ShareView:
        """Share the server with one user or one group (again: the expiry is replaced)."""
        self.require_enabled()
        if (user is None) == (group is None):
            raise BadRequest(N_("Share with exactly one of a user or a group."))
        if user == owner:
            raise BadRequest(N_("You already have access to your own server."))
        if expires_at is not None and expired(expires_at):
            raise BadRequest(N_("The end of the share must lie in the future."))
        async with self.sessions.begin() as session:
            row = await self._server(session, owner, server)
            user_id, group_id = await self._grantee_ids(session, user, group)
            found = (
                await session.execute(
                    select(Share).where(
                        Share.server_id == row.id,
                        Share.user_id == user_id if user_id is not None else Share.group_id == group_id,
                    )
                )
            ).scalar_one_or_none()
            if found is None:
                found = Share(server_id=row.id, user_id=user_id, group_id=group_id, created=utcnow())
                session.add(found)
            found.expires_at = expires_at
            await session.flush()
            view = ShareView(
                found.id,
                owner,
                server,
                user,
                group,
                aware(found.created) or utcnow(),
                expires_at,
                row.state == ServerState.RUNNING,
            )
        table = self._users if user is not None else self._groups
        table.setdefault((owner, server), {})[user or group or ""] = aware(expires_at)
        self._writes += 1
        log.info("%s shared %s with %s", owner, names.server_label(owner, server), view.grantee)
        await self._changed()
        return view

    async def revoke(self, owner: str, server: str, *, user: str | None = None, group: str | None = None) -> bool:
        """End one share (a user's or a group's); False when there was none."""
        if (user is None) == (group is None):
            raise BadRequest(N_("Revoke the share of exactly one user or one group."))
        async with self.sessions.begin() as session:
            row = await self._server(session, owner, server)
            if user is not None:
                who = select(User.id).where(User.name == user).scalar_subquery()
                result = await session.execute(delete(Share).where(Share.server_id == row.id, Share.user_id == who))
            else:
                which = select(Group.id).where(Group.name == group).scalar_subquery()
                result = await session.execute(delete(Share).where(Share.server_id == row.id, Share.group_id == which))
        table = self._users if user is not None else self._groups
        table.get((owner, server), {}).pop(user or group or "", None)
        self._writes += 1
        gone = bool(getattr(result, "rowcount", 0))
        if gone:
            log.info("%s revoked the share of %s with %s", owner, names.server_label(owner, server), user or group)
        await self._changed()
        return gone

    async def revoke_all(self, owner: str, server: str) -> int:
        """End every share of the server (not its codes); returns how many."""
        async with self.sessions.begin() as session:
            row = await self._server(session, owner, server)
            result = await session.execute(delete(Share).where(Share.server_id == row.id))
        self._users.pop((owner, server), None)
        self._groups.pop((owner, server), None)
        self._writes += 1
        await self._changed()
        return int(getattr(result, "rowcount", 0) or 0)

    async def revoke_by_id(self, share_id: int) -> ShareView:
        """End one share found by its id (the admins' list)."""
        found = [view for view in await self.shares() if view.id == share_id]
        if not found:
            raise NotFound(N_("There is no such share (any more)."))
        view = found[0]
        await self.revoke(view.owner, view.server, user=view.user, group=view.group)
        return view

    async def forget_server(self, owner: str, server: str) -> None:
        """The server was deleted (its shares and codes went with it by cascade): forget them here too."""
        self._users.pop((owner, server), None)
        self._groups.pop((owner, server), None)
        self._writes += 1
        await self._changed()

    async def rename_server(self, owner: str, old: str, new: str) -> None:
        """The server was renamed (its shares and codes belong to its row and went with it): move them here too,
        so the grantees' access follows at once."""
        for table in (self._users, self._groups):
            moved = table.pop((owner, old), None)
            if moved is not None:
                table[(owner, new)] = moved
        self._writes += 1
        await self._changed()

    async def create_code(
        self, owner: str, server: str, expires_in: int = CODE_DEFAULT_SECONDS
    ) -> tuple[str, CodeView]:
        """A new share code for the server; the code is returned once and only its hash is kept."""
        self.require_enabled()
        if not CODE_MIN_SECONDS <= expires_in <= CODE_MAX_SECONDS:
            raise BadRequest(
                L_(
                    "expires_in must be from %(least)d seconds to %(most)d seconds (one year).",
                    least=CODE_MIN_SECONDS,
                    most=CODE_MAX_SECONDS,
                )
            )
        code = secrets.token_urlsafe(24)
        async with self.sessions.begin() as session:
            row = await self._server(session, owner, server)
            now = utcnow()
            made = ShareCode(
                server_id=row.id,
                hashed=hash_code(code),
                created=now,
                expires_at=now + dt.timedelta(seconds=expires_in),
                exchange_count=0,
            )
            session.add(made)
            await session.flush()
            view = self._code_view(made, owner, row)
        log.info("%s made a share code for %s", owner, names.server_label(owner, server))
        return code, view

    async def revoke_codes(
        self, owner: str, server: str, *, code: str | None = None, code_id: int | None = None
    ) -> int:
        """Delete the server's share codes (all, or the one given by code or id); returns how many."""
        async with self.sessions.begin() as session:
            row = await self._server(session, owner, server)
            query = delete(ShareCode).where(ShareCode.server_id == row.id)
            if code is not None:
                query = query.where(ShareCode.hashed == hash_code(code))
            if code_id is not None:
                query = query.where(ShareCode.id == code_id)
            result = await session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def accept_code(self, code: str, user: str) -> ShareView:
        """Exchange a share code for a share of its server with ``user``."""
        self.require_enabled()
        async with self.sessions.begin() as session:
            found = await self._live_code(session, code)
            server = await session.get(Server, found.server_id)
            owner = await session.get(User, server.user_id) if server else None
            if server is None or owner is None:
                raise NotFound(N_("This share link is not valid (any more)."))
            if owner.name == user:
                raise BadRequest(N_("This share link is for your own server."))
            found.exchange_count += 1
            found.last_exchanged_at = utcnow()
            owner_name, server_name = owner.name, server.name
        existing = [view for view in await self.shares(owner=owner_name, server=server_name) if view.user == user]
        if existing:
            return existing[0]
        return await self.grant(owner_name, server_name, user=user)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    async def _server(session: AsyncSession, owner: str, server: str) -> Server:
        user = await get_user(session, owner)
        row = user.server_named(server) if user else None
        if row is None:
            raise NotFound(
                L_(
                    "%(name)s has no server named %(server)r.",
                    name=names.truncate(owner),
                    server=names.truncate(server),
                )
                if server
                else L_("%(name)s has no server yet (start it once first).", name=names.truncate(owner))
            )
        return row

    @staticmethod
    async def _grantee_ids(session: AsyncSession, user: str | None, group: str | None) -> tuple[int | None, int | None]:
        """(user id, None) or (None, group id); a 400 when the user or group does not exist."""
        if user is not None:
            target = await get_user(session, user)
            if target is None:
                raise BadRequest(L_("There is no user %(name)s.", name=names.truncate(user)))
            return target.id, None
        found = (await session.execute(select(Group.id).where(Group.name == group))).scalar_one_or_none()
        if found is None:
            raise BadRequest(L_("There is no group %(name)s.", name=names.truncate(group or "")))
        return None, found

    @staticmethod
    async def _live_code(session: AsyncSession, code: str) -> ShareCode:
        found = (
            await session.execute(select(ShareCode).where(ShareCode.hashed == hash_code(code)))
        ).scalar_one_or_none()
        if found is None or expired(found.expires_at):
            raise NotFound(N_("This share link is not valid (any more): it is unknown, revoked or expired."))
        return found

    @staticmethod
    def _code_view(code: ShareCode, owner: str, server: Server) -> CodeView:
        return CodeView(
            code.id,
            owner,
            server.name,
            aware(code.created) or utcnow(),
            aware(code.expires_at) or utcnow(),
            code.exchange_count,
            aware(code.last_exchanged_at),
            server.state == ServerState.RUNNING,
        )
