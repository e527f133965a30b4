"""Users kept in the hub's database with argon2 password hashes."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.auth import Authenticator, Identity
from hub.db import Sessionmaker, get_user
from hub.models import User

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a real password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def set_password(sessions: Sessionmaker, name: str, password: str, *, admin: bool = False) -> User:
    """Create the user or change their password."""
    password_hash = await hash_password(password)
    async with sessions.begin() as session:
        user = await get_user(session, name)
        if user is None:
            user = User(name=name, admin=admin)
            session.add(user)
        user.password_hash = password_hash
        user.admin = user.admin or admin
    return user


class NativeAuthenticator(Authenticator):
    name = "native"

    async def check_password(self, username: str, password: str) -> Identity | None:
        async with self.sessions() as session:
            user = await get_user(session, username)
        if not await verify_password(user.password_hash if user else None, password):
            return None
        assert user is not None
        return Identity(user.name, admin=user.admin or None)
