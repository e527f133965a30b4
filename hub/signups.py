"""Sign-up with approval: people ask for a built-in account, an admin approves or rejects each request.

``SignupService`` is the only writer of the ``signup_requests`` table. A request keeps the name and
the password's hash (never the password); approving it makes the account, of the built-in method
that allows sign-up, with that hash, so the person logs in with the password they chose.

Asking is throttled per client address (a few requests an hour) and the number of requests waiting
at once is capped, so nobody can bury the admins. Where a request stands is only told to whoever
knows its password: the status page and the login form both check it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.accounts import AccountService
from hub.auth.native import verify_password
from hub.auth_config import NativeMethod
from hub.config import Settings
from hub.db import Sessionmaker
from hub.errors import BadUsername, Conflict, LimitReached, NotFound
from hub.i18n import L_, N_
from hub.models import SignupRequest, utcnow
from hub.names import normalize_username, truncate, validate_username

log = logging.getLogger(__name__)
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
REQUESTS_PER_CLIENT = 3
"""Sign-up requests one client address may make within CLIENT_WINDOW."""
TRIES_PER_CLIENT = 20
"""Sign-up forms one client address may send within CLIENT_WINDOW (taken names and typos included)."""
CLIENT_WINDOW = 3600.0
MAX_PENDING = 100
"""Requests waiting for an admin at once; more are refused until admins decide."""
TAKEN = N_("This name is taken. Please choose another one.")
WAITING = N_("Your request is waiting for an admin's approval.")
TURNED_DOWN = N_("Your request for an account was turned down.")
APPROVED_TEXT = N_("Your request was approved: you can log in now.")


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: int
    name: str
    created: dt.datetime


def signup_method(settings: Settings) -> NativeMethod | None:
    """The built-in login method that takes sign-ups (the first that allows them), or None."""
    return next(
        (method for method in settings.auth.methods if isinstance(method, NativeMethod) and method.allow_signup), None
    )


def reserved_names(settings: Settings) -> set[str]:
    """Names a stranger may not ask for: whoever holds them becomes an admin at login."""
    names = set(settings.auth.admin_users)
    for method in settings.auth.methods:
        names.update(method.admin_users)
    return {normalize_username(name) for name in names}


class ClientLimit:
    """How many sign-up forms and requests each client address sent in the last hour (in memory)."""

    def __init__(self) -> None:
        self._tries: dict[str, list[float]] = {}
        self._requests: dict[str, list[float]] = {}

    @staticmethod
    def _recent(moments: dict[str, list[float]], client: str, now: float) -> list[float]:
        if len(moments) > 10_000:  # forget addresses quiet for an hour
            for key in [key for key, kept in moments.items() if not kept or now - kept[-1] >= CLIENT_WINDOW]:
                del moments[key]
        kept = [moment for moment in moments.get(client, []) if now - moment < CLIENT_WINDOW]
        moments[client] = kept
        return kept

    def try_once(self, client: str) -> None:
        """Count one form from ``client``; LimitReached when it sent too many, or made too many requests."""
        now = time.monotonic()
        tries = self._recent(self._tries, client, now)
        if len(tries) >= TRIES_PER_CLIENT or len(self._recent(self._requests, client, now)) >= REQUESTS_PER_CLIENT:
            log.warning("sign-up from %s refused: too many from this address", truncate(client))
            raise LimitReached(
                N_("Too many sign-up requests came from your network in the last hour. Please try again later."),
                f"sign-up limit reached for {client}",
            )
        tries.append(now)

    def requested(self, client: str) -> None:
        """Count one request made by ``client``."""
        now = time.monotonic()
        self._recent(self._requests, client, now).append(now)


class SignupService:
    def __init__(self, sessions: Sessionmaker, accounts: AccountService, settings: Settings) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self.settings = settings
        self.limit = ClientLimit()

    @property
    def method(self) -> NativeMethod | None:
        return signup_method(self.settings)

    def check_name(self, raw_name: str) -> str:
        """The name to ask for, checked (BadUsername, or Conflict when an account holds it or it is reserved)."""
        name = validate_username(normalize_username(raw_name))
        if self.accounts.get(name) is not None or name in reserved_names(self.settings):
            raise Conflict(TAKEN, f"sign-up for taken name {name}")
        return name

    async def ask(self, name: str, password_hash: str, client: str) -> None:
        """Keep a new pending request (``name`` from ``check_name``); Conflict when the name is taken."""
        self.check_name(name)
        async with self.sessions.begin() as session:
            waiting = await session.scalar(
                select(func.count()).select_from(SignupRequest).where(SignupRequest.status == PENDING)
            )
            if (waiting or 0) >= MAX_PENDING:
                log.warning("sign-up of %s refused: %d requests are waiting already", name, waiting)
                raise LimitReached(
                    N_("Many sign-up requests are waiting for an admin right now. Please try again later."),
                    f"{waiting} sign-up requests pending",
                )
            old = await self._request(session, name)
            if old is not None:
                if old.status != APPROVED:
                    raise Conflict(TAKEN, f"sign-up for {name}, which has a {old.status} request")
                await session.delete(old)  # approved once, but that account was deleted since: the name is free
                await session.flush()
            session.add(SignupRequest(name=name, password_hash=password_hash, status=PENDING))
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(TAKEN, f"sign-up for {name} raced another") from None
        self.limit.requested(client)
        log.info("sign-up request from %s for %s", truncate(client), name)

    async def status(self, raw_name: str, password: str) -> str | None:
        """Where the request stands (pending, approved or rejected), told only with its password; else None."""
        try:
            name = validate_username(normalize_username(raw_name))
        except BadUsername:
            return None
        async with self.sessions() as session:
            request = await self._request(session, name)
        if request is None:
            await verify_password(None, password)  # the same time as a wrong password
            return None
        if not await verify_password(request.password_hash, password):
            return None
        return request.status

    async def pending_message(self, raw_name: str, password: str) -> str | None:
        """For a failed built-in login: what to tell someone whose sign-up has not made an account (yet)."""
        try:
            name = validate_username(normalize_username(raw_name))
        except BadUsername:
            return None
        async with self.sessions() as session:
            request = await self._request(session, name)
        if request is None or request.status == APPROVED:
            return None
        if not await verify_password(request.password_hash, password):
            return None
        return WAITING if request.status == PENDING else TURNED_DOWN

    async def pending(self) -> list[PendingRequest]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(SignupRequest).where(SignupRequest.status == PENDING).order_by(SignupRequest.created)
            )
            return [PendingRequest(row.id, row.name, row.created) for row in rows.scalars()]

    async def count_pending(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(SignupRequest).where(SignupRequest.status == PENDING)
            )
        return count or 0

    async def approve(self, request_id: int) -> str:
        """Make the account with the password the person chose; returns its name."""
        method = self.method
        if method is None:
            raise NotFound(N_("Sign-up is not enabled on this hub."))
        async with self.sessions() as session:
            request = await self._pending(session, request_id)
            name, password_hash = request.name, request.password_hash
        if self.accounts.get(name) is not None:
            raise Conflict(L_("An account named %(name)s exists already. Reject this request.", name=name))
        if name in reserved_names(self.settings):  # listed as an admin since the request came in
            raise Conflict(
                L_("The name %(name)s is reserved for an admin in the configuration. Reject this request.", name=name)
            )
        await self.accounts.add_one(name, method=method.name)  # Conflict when someone made it meanwhile
        await self.accounts.set_password_hash(name, password_hash, method=method.name)
        await self._decide(request_id, APPROVED)
        log.info("sign-up request of %s approved", name)
        return name

    async def reject(self, request_id: int) -> str:
        async with self.sessions() as session:
            name = (await self._pending(session, request_id)).name
        await self._decide(request_id, REJECTED)
        log.info("sign-up request of %s rejected", name)
        return name

    async def forget(self, name: str) -> None:
        """Drop any request for ``name`` (tests and tidy-ups)."""
        async with self.sessions.begin() as session:
            await session.execute(delete(SignupRequest).where(SignupRequest.name == name))

    async def _decide(self, request_id: int, status: str) -> None:
        async with self.sessions.begin() as session:
            request = await self._pending(session, request_id)
            request.status = status
            request.decided = utcnow()  # the hash stays: the person checks where the request stands with it

    @staticmethod
    async def _request(session: AsyncSession, name: str) -> SignupRequest | None:
        return (await session.execute(select(SignupRequest).where(SignupRequest.name == name))).scalar_one_or_none()

    @staticmethod
    async def _pending(session: AsyncSession, request_id: int) -> SignupRequest:
        request = await session.get(SignupRequest, request_id)
        if request is None or request.status != PENDING:
            raise NotFound(N_("This sign-up request is not waiting any more (another admin decided it already)."))
        return request
