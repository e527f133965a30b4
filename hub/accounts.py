"""Accounts: the one owner of every write to users, and the in-memory view of who may hold a session.

Every change to an account (create, delete, admin flag, password, session cut-off) goes through
``AccountService``, from the hub's pages, its API and the command line alike. Each write also
sets a new *accounts generation* in the database. A running hub polls that value every second
(one tiny query) and reloads its caches when it moved, so a change made with ``hub user ...``
while the hub runs reaches it within seconds: a removed user's cookies and tokens stop working,
a new password ends other sessions, admin rights follow the database.

Sessions live in encrypted cookies, so the hub cannot delete one. Instead a cookie carries the
account's id and the time it was issued, and it counts only while that account still exists and
it was issued after the account's cut-off. Forward auth reads this map: no database query.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Sessionmaker, get_user
from hub.errors import BadRequest, Conflict, NotFound
from hub.i18n import L_, N_
from hub.models import HubState, User, utcnow
from hub.names import normalize_username, validate_username

log = logging.getLogger(__name__)
GENERATION_KEY = "accounts_generation"
SYNC_SECONDS = 1.0
UNSIGNALLED_SYNC_SECONDS = 10.0
"""With a signal file, the periodic look reads the database only when the file moved, or this long after the last
look: for a writer that cannot touch it (a command run on another machine against the same PostgreSQL database)."""
COARSE_MTIME_SECONDS = 3.0
"""For this long after the file last moved, the look reads the database anyway: on a filesystem with coarse
timestamps a second write in the same tick leaves the file's time as it was."""
MISS_REFRESH_SECONDS = 0.25
SIGNAL_FILE = "accounts.changed"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    admin: bool
    sessions_valid_after: float
    method: str | None = None
    """The login method the account belongs to."""
    password_must_change: bool = False


class OtherPerson(Conflict):
    """The login provider names a person other than the one the account was made for."""

    def __init__(self, name: str) -> None:
        super().__init__(
            L_(
                "The account %(name)s on this hub belongs to another person of your login provider. "
                "Please ask the hub's administrator.",
                name=name,
            ),
            f"{name}: the provider's subject differs from the one bound to the account",
        )


def bind_subject(user: User, subject: str | None) -> None:
    """Bind the account to the provider's id of the person at the first login; refuse another one later."""
    if subject is None:
        return
    if user.auth_subject is None:
        user.auth_subject = subject
    elif not secrets.compare_digest(user.auth_subject.encode(), subject.encode()):
        raise OtherPerson(user.name)


class WrongMethod(Conflict):
    """The name belongs to an account of another login method."""

    def __init__(self, name: str, method: str | None) -> None:
        super().__init__(
            f"The name {name} belongs to an account of another login method. Log in with that method.",
            f"{name} belongs to login method {method}",
        )
        self.method = method


async def mark_changed(session: AsyncSession) -> tuple[str, str]:
    """Give accounts a new generation inside the caller's transaction; running hubs notice and reload.

    Returns (the generation before, the new one).
    """
    value = secrets.token_hex(8)
    row = await session.get(HubState, GENERATION_KEY)
    if row is None:
        session.add(HubState(key=GENERATION_KEY, value=value))
        return "", value
    before, row.value = row.value, value
    return before, value


async def read_generation(sessions: Sessionmaker) -> str:
    async with sessions() as session:
        row = await session.get(HubState, GENERATION_KEY)
        return row.value if row is not None else ""


Listener = Callable[[], Awaitable[None]]


def account_of(user: User) -> Account:
    return Account(
        user.id, user.admin, user.sessions_valid_after or 0.0, user.auth_method, bool(user.password_must_change)
    )


class AccountService:
    def __init__(self, sessions: Sessionmaker, signal_file: Path | None = None, default_method: str = "native") -> None:
        """``signal_file`` (in the data folder) is touched after every write, so a running hub that meets an
        unknown token can tell with one ``stat`` whether another process just changed something.
        ``default_method``: the login method of accounts made without naming one (the first configured)."""
        self.sessions = sessions
        self.default_method = default_method
        self.signal_file = signal_file
        self._signal_seen: float | None = None
        self._accounts: dict[str, Account] = {}
        self._generation = ""
        self._listeners: list[Listener] = []
        self._loading = asyncio.Lock()
        self._last_check = 0.0
        self._refreshing: asyncio.Future[bool] | None = None

    # -- reading (from memory) ---------------------------------------------------------------
    def get(self, name: str) -> Account | None:
        return self._accounts.get(name)

    def any(self) -> bool:
        """Whether the hub has any account at all."""
        return bool(self._accounts)

    def on_change(self, listener: Listener) -> None:
        """Call ``listener`` after accounts were reloaded (another process changed them) or one was deleted."""
        self._listeners.append(listener)

    async def load(self) -> None:
        async with self._loading:
            self._signal_seen = self._signal_mtime()
            generation = await read_generation(self.sessions)
            async with self.sessions() as session:
                rows = (await session.execute(select(User))).scalars().all()
                self._accounts = {user.name: account_of(user) for user in rows}
            self._generation = generation

    async def sync(self) -> bool:
        """Reload when another process (the CLI, a second hub) changed accounts; True when it did."""
        last_check, signal_seen = self._last_check, self._signal_seen
        self._last_check = time.monotonic()
        self._signal_seen = self._signal_mtime()
        try:
            generation = await read_generation(self.sessions)
        except BaseException:  # the database away a moment: the signal is not used up, the next look tries again
            self._last_check, self._signal_seen = last_check, signal_seen
            raise
        if generation == self._generation:
            return False
        await self.load()
        for listener in self._listeners:
            await listener()
        log.info("accounts changed outside this hub: reloaded")
        return True

    async def refresh_if_stale(self) -> None:
        """Look for outside changes now, unless that was done in the last quarter second and the signal file
        did not move since (a token made with ``hub token create`` a moment ago works at once; a flood of
        unknown tokens costs at most four tiny queries a second, all of them shared)."""
        for _ in range(2):  # a look already under way may have begun just before the change: then one more
            if self._refreshing is None:
                if not self._signalled() and time.monotonic() - self._last_check < MISS_REFRESH_SECONDS:
                    return
            await asyncio.shield(self._shared_sync())

    def _shared_sync(self) -> asyncio.Future[bool]:
        """The look for outside changes under way, or a new one. Every look goes through here (the periodic one
        too), so nobody skips a look as recent while its reload, token map included, is still unfinished."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self.sync())
            self._refreshing.add_done_callback(lambda _: setattr(self, "_refreshing", None))
        return self._refreshing

    def _signal_mtime(self) -> float | None:
        try:
            return self.signal_file.stat().st_mtime if self.signal_file is not None else None
        except OSError:
            return None

    def _signalled(self) -> bool:
        return self._signal_mtime() != self._signal_seen

    def _signalled_lately(self) -> bool:
        return self._signal_seen is not None and time.time() - self._signal_seen < COARSE_MTIME_SECONDS

    def signal(self) -> None:
        """Tell other processes on this host that accounts or tokens changed (after the commit)."""
        if self.signal_file is None:
            return
        try:
            self.signal_file.touch()
            os.utime(self.signal_file)
        except OSError as exc:
            log.warning("could not touch %s (a running hub sees this change within 10 s): %s", self.signal_file, exc)

    async def run_sync(self, interval: float = SYNC_SECONDS, unsignalled: float = UNSIGNALLED_SYNC_SECONDS) -> None:
        """Look for outside changes every ``interval`` seconds: at once when the signal file moved, otherwise every
        ``unsignalled`` seconds (an idle hub then asks its database every ten seconds rather than every second)."""
        while True:
            await asyncio.sleep(interval)
            if self.signal_file is not None and not self._signalled() and not self._signalled_lately():
                if time.monotonic() - self._last_check < unsignalled:
                    continue
            try:
                await asyncio.shield(self._shared_sync())
            except Exception:
                log.exception("could not check for account changes")

    # -- writing -------------------------------------------------------------------------------
    def _remember(self, user: User) -> None:
        self._accounts[user.name] = account_of(user)

    async def _write(self, change: Callable[[AsyncSession], Awaitable[list[User]]]) -> list[User]:
        async with self.sessions.begin() as session:
            users = await change(session)
            await session.flush()
            before, generation = await mark_changed(session)
        for user in users:
            self._remember(user)
        if before == self._generation:
            self._generation = generation  # nobody else changed anything since this hub last looked
        # else: another process changed accounts meanwhile; keep the stale value so the next sync reloads
        self.signal()
        return users

    async def add(
        self, raw_names: list[str], admin: bool = False, method: str | None = None
    ) -> tuple[list[str], list[str]]:
        """Create users (of ``method``, default the first configured); returns (created, already there).
        Any unusable name refuses the whole request."""
        wanted: list[str] = []
        for raw in raw_names:
            name = validate_username(normalize_username(raw))
            if name not in wanted:
                wanted.append(name)
        if not wanted:
            raise BadRequest(N_("Give at least one user name."))
        existing: set[str] = set()

        async def change(session: AsyncSession) -> list[User]:
            existing.update((await session.execute(select(User.name).where(User.name.in_(wanted)))).scalars())
            made = [
                User(
                    name=name, admin=admin, sessions_valid_after=time.time(), auth_method=method or self.default_method
                )
                for name in wanted
                if name not in existing
            ]
            session.add_all(made)
            return made

        created = [user.name for user in await self._write(change)]
        log.info("added users %s", ", ".join(created) or "(none)")
        return created, [name for name in wanted if name in existing]

    async def add_one(self, raw_name: str, admin: bool = False, method: str | None = None) -> str:
        created, existing = await self.add([raw_name], admin, method)
        if existing:
            raise Conflict(L_("The user %(name)s already exists.", name=existing[0]))
        return created[0]

    async def ensure(
        self,
        name: str,
        *,
        admin: bool = False,
        logged_in: bool = False,
        create: bool = True,
        valid_after: float | None = None,
        method: str | None = None,
        subject: str | None = None,
    ) -> Account | None:
        """The account of ``name``, created when missing (and ``create``); ``admin`` only ever grants (config's
        admin lists). A new account accepts sessions issued after ``valid_after`` (default: now).

        With ``method`` (a login), an account of another method raises WrongMethod: one name, one owner. With
        ``subject`` (the provider's fixed id of the person), the account is bound to it at the first such login
        and another subject later raises OtherPerson (the provider's name changed hands)."""
        method_of_new = method or self.default_method

        async def change(session: AsyncSession) -> list[User]:
            user = await get_user(session, name)
            if user is None:
                if not create:
                    return []
                user = User(
                    name=name, admin=admin, sessions_valid_after=valid_after or time.time(), auth_method=method_of_new
                )
                session.add(user)
            elif method is not None and user.auth_method not in (None, method):
                raise WrongMethod(name, user.auth_method)
            elif user.auth_method is None:
                user.auth_method = method_of_new
            bind_subject(user, subject)
            user.admin = user.admin or admin
            if logged_in:
                user.last_activity = utcnow()
            return [user]

        current = self._accounts.get(name)
        if current is not None and method is not None and current.method not in (None, method):
            raise WrongMethod(name, current.method)
        if logged_in and current is not None and current.method is not None and (current.admin or not admin):
            async with self.sessions.begin() as session:  # the common login: no account change to announce
                user = await get_user(session, name)
                if user is not None:
                    bind_subject(user, subject)
                    user.last_activity = utcnow()
                    return current
        users = await self._write(change)
        return self._accounts[users[0].name] if users else None

    async def set_admin(self, name: str, admin: bool) -> None:
        async def change(session: AsyncSession) -> list[User]:
            user = await self._existing(session, name)
            user.admin = admin
            return [user]

        await self._write(change)
        log.info("%s is %s", name, "now an admin" if admin else "no longer an admin")

    async def set_password_hash(
        self,
        name: str,
        password_hash: str,
        *,
        create: bool = False,
        admin: bool = False,
        keep_sessions: bool = False,
        must_change: bool = False,
        method: str | None = None,
    ) -> None:
        """Store a new password (already hashed); every earlier session of the account ends.

        ``create`` makes the account (of ``method``, default the first) when missing; ``admin`` only grants;
        ``must_change``: the person must choose a new one at their next login (an admin's reset).
        """

        async def change(session: AsyncSession) -> list[User]:
            user = await get_user(session, name)
            if user is None:
                if not create:
                    raise NotFound(L_("There is no user %(name)s.", name=name))
                user = User(name=name, admin=admin, auth_method=method or self.default_method)
                session.add(user)
            user.password_hash = password_hash
            user.password_must_change = must_change
            user.admin = user.admin or admin
            if not keep_sessions:
                user.sessions_valid_after = time.time()
            return [user]

        await self._write(change)

    async def claim_unowned(self, password_method: str | None = None) -> int:
        """Give accounts from before login methods had names a method; returns how many.

        Accounts with a password the hub keeps go to ``password_method`` (the first built-in method, when there is
        one): after an upgrade straight to ``methods: [oidc, native]`` the old local accounts stay local, and a
        single sign-on name cannot inherit them. The others go to the default (first) method."""
        unowned = [name for name, account in self._accounts.items() if account.method is None]
        if not unowned:
            return 0

        async def change(session: AsyncSession) -> list[User]:
            users = list((await session.execute(select(User).where(User.auth_method.is_(None)))).scalars())
            for user in users:
                user.auth_method = (password_method if user.password_hash else None) or self.default_method
            return users

        users = await self._write(change)
        for user in users:
            log.info("account %s (from before login methods had names) now belongs to %s", user.name, user.auth_method)
        return len(users)

    async def set_method(self, name: str, method: str) -> None:
        """Move an account to another login method (an admin's decision: the name then logs in only there)."""

        async def change(session: AsyncSession) -> list[User]:
            user = await self._existing(session, name)
            user.auth_method = method
            user.auth_subject = None  # the new method binds its own person at the next login
            user.sessions_valid_after = time.time()
            return [user]

        await self._write(change)
        log.info("%s now logs in with %s", name, method)

    def orphans(self, methods: set[str]) -> list[str]:
        """Accounts whose login method is not configured (any more): nobody can log in to them."""
        return sorted(name for name, account in self._accounts.items() if account.method not in methods)

    async def set_auth_state(self, name: str, encrypted: str | None) -> None:
        """Keep what the login method hands to the user's server (already encrypted); None forgets it."""
        async with self.sessions.begin() as session:
            user = await self._existing(session, name)
            user.auth_state = encrypted

    async def end_sessions(self, name: str) -> None:
        """Every session of the user issued until now stops counting (logging out ends them all)."""

        async def change(session: AsyncSession) -> list[User]:
            user = await get_user(session, name)
            if user is None:
                return []
            user.sessions_valid_after = time.time()
            return [user]

        await self._write(change)

    async def delete(self, name: str) -> None:
        """Delete the account, its tokens and its server record (the caller stops the server first)."""

        async def change(session: AsyncSession) -> list[User]:
            await session.delete(await self._existing(session, name))
            return []

        await self._write(change)
        self._accounts.pop(name, None)
        for listener in self._listeners:  # the account's tokens went with it (database cascade): reload them
            await listener()
        log.info("deleted user %s", name)

    @staticmethod
    async def _existing(session: AsyncSession, name: str) -> User:
        user = await get_user(session, name)
        if user is None:
            raise NotFound(L_("There is no user %(name)s.", name=name))
        return user
