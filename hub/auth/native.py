"""Users kept in the hub's database with argon2 password hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.accounts import AccountService
from hub.auth import Authenticator, Identity, PasswordAuthenticator
from hub.auth.pool import auth_pool
from hub.db import get_user
from hub.i18n import L_, N_

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a real password")


def password_problem(password: str, min_length: int) -> str | None:
    """Why this password cannot be used (one sentence for the person), None when it can."""
    if len(password) < min_length:
        return L_("The password must have at least %(count)d characters.", count=min_length)
    if len(password) > 1024:
        return N_("The password is too long (at most 1024 characters).")
    return None


async def hash_password(password: str) -> str:
    return await auth_pool.run(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await auth_pool.run(verify)


async def set_password(
    accounts: AccountService,
    name: str,
    password: str,
    *,
    admin: bool = False,
    create: bool = True,
    method: str | None = None,
) -> None:
    """Create the user (when ``create``, of ``method``) or change their password; their earlier sessions end."""
    await accounts.set_password_hash(name, await hash_password(password), create=create, admin=admin, method=method)


class NativeAuthenticator(PasswordAuthenticator):
    name = "native"
    creates_accounts = False  # its users are made by admins; a login never brings a deleted account back

    async def check_password(self, username: str, password: str) -> Identity | None:
        async with self.sessions() as session:
            user = await get_user(session, username)
        if user is not None and user.auth_method not in (None, self.method.name):
            user = None  # an account of another login method: its password (if any) does not count here
        if not await verify_password(user.password_hash if user else None, password):
            return None
        assert user is not None
        # No admin flag from here: it was read before the (slow) check and may be stale; the hub reads it live.
        return Identity(user.name)


AUTHENTICATORS: dict[str, type[Authenticator]] = {"native": NativeAuthenticator}
