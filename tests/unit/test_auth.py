"""Authenticators against a real SQLite database, and the hub's login policy around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.accounts import AccountService
from hub.auth import AccessPolicy, Identity, authenticator_class, login
from hub.auth.dummy import DummyAuthenticator
from hub.auth.native import NativeAuthenticator, set_password
from hub.config import AuthSection
from hub.db import Sessionmaker, database, get_user
from hub.errors import BadUsername


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    async for factory in database(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite'}"):
        yield factory


def test_authenticators_are_found_by_their_entry_point_name() -> None:
    assert authenticator_class("native") is NativeAuthenticator
    assert authenticator_class("dummy") is DummyAuthenticator
    assert authenticator_class("pam").__name__ == "PamAuthenticator"
    with pytest.raises(LookupError, match="no authenticator named 'ldap'"):
        authenticator_class("ldap")


async def test_native_users_log_in_with_their_password_only(sessions: Sessionmaker) -> None:
    await set_password(AccountService(sessions), "alice", "correct horse")
    async with sessions() as session:
        user = await get_user(session, "alice")
        assert user is not None and user.password_hash and "correct horse" not in user.password_hash
        assert user.password_hash.startswith("$argon2")
    backend = NativeAuthenticator(AuthSection(), sessions)
    policy = AccessPolicy.from_settings(AuthSection())
    assert await login(backend, policy, "Alice", "correct horse") == Identity("alice", admin=False)
    assert await login(backend, policy, "alice", "wrong") is None
    assert await login(backend, policy, "nobody", "correct horse") is None
    assert await login(backend, policy, "alice", "") is None


async def test_admin_and_allowed_lists_apply_to_every_authenticator(sessions: Sessionmaker) -> None:
    settings = AuthSection(type="dummy", dummy_password="pw", allowed_users=["carol"], admin_users=["Root-Admin"])
    backend = DummyAuthenticator(settings, sessions)
    policy = AccessPolicy.from_settings(settings)
    assert await login(backend, policy, "carol", "pw") == Identity("carol", admin=False)
    assert await login(backend, policy, "root-admin", "pw") == Identity("root-admin", admin=True)
    assert await login(backend, policy, "dave", "pw") is None
    assert await login(backend, policy, "carol", "not pw") is None
    with pytest.raises(BadUsername):
        await login(backend, policy, "../carol", "pw")


def test_the_dummy_authenticator_warns_at_start() -> None:
    backend = DummyAuthenticator(AuthSection(type="dummy", dummy_password="pw"), None)  # type: ignore[arg-type]
    assert "only for demos" in backend.startup_warnings()[0]
