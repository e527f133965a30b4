"""API tokens: made, listed, revoked, and checked from memory on every request.

A token is 32 random bytes (URL-safe text). The database keeps its SHA-256 only; checking a
token hashes it and looks the hash up in an in-memory map, so forward auth and the API never
query the database for a token (a flood of junk tokens costs a hash each). Tokens made or revoked
elsewhere (``hub token create``) reach the map through the accounts generation (see accounts.py);
an unknown token asks for that check early, at most four times a second for all unknown tokens
together. A token's rights are its owner's, read live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select

from hub.accounts import AccountService, mark_changed
from hub.db import Sessionmaker, get_user
from hub.errors import NotFound
from hub.i18n import L_
from hub.models import ApiToken, User, utcnow


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenOwner:
    token_id: int
    username: str
    admin: bool
    expires_at: dt.datetime | None
    user_id: int = 0


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    username: str
    note: str
    prefix: str
    created: dt.datetime
    expires_at: dt.datetime | None
    last_activity: dt.datetime | None

    @classmethod
    def of(cls, token: ApiToken, last_used: dt.datetime | None = None) -> TokenView:
        return cls(
            token.id,
            token.owner.name,
            token.note,
            token.prefix,
            token.created,
            token.expires_at,
            last_used or token.last_activity,
        )


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; every time the hub stores is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


class TokenStore:
    def __init__(self, sessions: Sessionmaker, accounts: AccountService | None = None) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self._by_hash: dict[str, TokenOwner] = {}
        self._last_used: dict[int, dt.datetime] = {}
        self._loading = asyncio.Lock()  # loads never overlap, so an older one cannot bring back a revoked token

    async def load(self) -> None:
        async with self._loading, self.sessions() as session:
            tokens = (await session.execute(select(ApiToken))).scalars().all()
            self._by_hash = {
                token.hashed: TokenOwner(
                    token.id, token.owner.name, token.owner.admin, aware(token.expires_at), token.owner.id
                )
                for token in tokens
            }

    async def check(self, token: str) -> TokenOwner | None:
        """The owner of a valid, unexpired token, with the owner's admin rights as they are now; else None."""
        if not self.knows(token) and self.accounts is not None:
            await self.accounts.refresh_if_stale()  # made by another process a moment ago?
        return self.check_known(token)

    def knows(self, token: str) -> bool:
        """Whether the token is among those loaded (valid or not); an unknown one may be new in the database."""
        return hash_token(token) in self._by_hash

    def check_known(self, token: str) -> TokenOwner | None:
        """``check`` without looking in the database for a token made elsewhere a moment ago."""
        owner = self._by_hash.get(hash_token(token))
        if owner is None:
            return None
        now = utcnow()
        if owner.expires_at is not None and owner.expires_at <= now:
            return None
        if self.accounts is not None:
            account = self.accounts.get(owner.username)
            if account is None or account.id != owner.user_id:
                return None  # the account is gone (or is another account of the same name)
            if account.admin != owner.admin:
                owner = TokenOwner(owner.token_id, owner.username, account.admin, owner.expires_at, owner.user_id)
        self._last_used[owner.token_id] = now
        return owner

    async def create(self, username: str, note: str = "", expires_in: int | None = None) -> tuple[TokenView, str]:
        token = secrets.token_urlsafe(32)
        expires_at = utcnow() + dt.timedelta(seconds=expires_in) if expires_in else None
        async with self.sessions.begin() as session:
            user = await get_user(session, username)
            if user is None:
                raise NotFound(L_("There is no user %(name)s.", name=username))
            row = ApiToken(
                user_id=user.id, hashed=hash_token(token), prefix=token[:4], note=note[:200], expires_at=expires_at
            )
            row.owner = user
            session.add(row)
            await session.flush()
            view = TokenView.of(row)
            await mark_changed(session)
        if self.accounts is not None:
            self.accounts.signal()
        await self.load()
        return view, token

    async def list(self, username: str) -> list[TokenView]:
        async with self.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(ApiToken).join(ApiToken.owner).where(User.name == username).order_by(ApiToken.id)
                    )
                )
                .scalars()
                .all()
            )
            return [TokenView.of(row, self._last_used.get(row.id)) for row in rows]

    async def get(self, username: str, token_id: int) -> TokenView:
        for token in await self.list(username):
            if token.id == token_id:
                return token
        raise NotFound(L_("%(name)s has no token %(token)s.", name=username, token=token_id))

    async def revoke(self, username: str, token_id: int) -> None:
        await self.get(username, token_id)
        async with self.sessions.begin() as session:
            await session.execute(delete(ApiToken).where(ApiToken.id == token_id))
            await mark_changed(session)
        if self.accounts is not None:
            self.accounts.signal()
        self._by_hash = {hashed: owner for hashed, owner in self._by_hash.items() if owner.token_id != token_id}
        await self.load()

    async def flush_activity(self) -> None:
        """Write the last-use times gathered in memory to the database."""
        used, self._last_used = self._last_used, {}
        if not used:
            return
        async with self.sessions.begin() as session:
            for token_id, moment in used.items():
                row = await session.get(ApiToken, token_id)
                if row is not None:
                    row.last_activity = moment
