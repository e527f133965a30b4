"""Authenticators against a real SQLite database, and the hub's login policy around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.accounts import AccountService, WrongMethod
from hub.auth import AccessPolicy, Identity, LoginRefused, PasswordAuthenticator, authenticator_class
from hub.auth import check_password_login as check
from hub.auth.dummy import DummyAuthenticator
from hub.auth.native import NativeAuthenticator, set_password
from hub.auth_config import MethodBase, NativeMethod
from hub.config import AuthSection, Settings
from hub.db import Sessionmaker, database, get_user
from hub.errors import BadUsername

IMAGES = [{"name": "lab", "image": "example/lab"}]


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    async for factory in database(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite'}"):
        yield factory


def settings_with(**auth: Any) -> Settings:
    return Settings(images=IMAGES, auth=auth)  # type: ignore[arg-type]  # validated from plain data, as from YAML


async def login(backend: PasswordAuthenticator, policy: AccessPolicy, name: str, password: str) -> Identity | None:
    found = await check(backend, name, password)
    if found is None:
        return None
    try:
        return policy.admit(found, backend.method)
    except LoginRefused:
        return None


def test_authenticators_are_found_by_their_type() -> None:
    assert authenticator_class("native") is NativeAuthenticator
    assert authenticator_class("dummy") is DummyAuthenticator
    assert authenticator_class("pam").__name__ == "PamAuthenticator"
    assert authenticator_class("header").__name__ == "TrustedHeaderAuthenticator"
    with pytest.raises(LookupError, match="no login method of type 'kerberos'"):
        authenticator_class("kerberos")


def test_an_old_single_authenticator_configuration_becomes_one_method() -> None:
    auth = AuthSection(type="dummy", dummy_password="pw", allowed_users=["carol"])  # type: ignore[arg-type]
    assert [(method.name, method.type) for method in auth.methods] == [("dummy", "dummy")]
    assert auth.primary.name == "dummy"
    assert AuthSection().primary.type == "native"


def test_two_methods_need_two_names() -> None:
    with pytest.raises(ValueError, match="the name 'native' is used twice"):
        AuthSection(methods=[{"type": "native"}, {"type": "native"}])  # type: ignore[list-item]
    auth = AuthSection(methods=[{"type": "native"}, {"type": "native", "name": "guests"}])  # type: ignore[list-item]
    assert [method.name for method in auth.methods] == ["native", "guests"]


async def test_native_users_log_in_with_their_password_only(sessions: Sessionmaker) -> None:
    await set_password(AccountService(sessions), "alice", "correct horse")
    async with sessions() as session:
        user = await get_user(session, "alice")
        assert user is not None and user.password_hash and "correct horse" not in user.password_hash
        assert user.password_hash.startswith("$argon2")
        assert user.auth_method == "native"
    settings = settings_with()
    backend = NativeAuthenticator(settings.auth.primary, settings, sessions)
    policy = AccessPolicy.from_settings(settings.auth)
    assert await login(backend, policy, "Alice", "correct horse") == Identity("alice", admin=False)
    assert await login(backend, policy, "alice", "wrong") is None
    assert await login(backend, policy, "nobody", "correct horse") is None
    assert await login(backend, policy, "alice", "") is None


async def test_a_native_account_of_one_method_does_not_log_in_through_another(sessions: Sessionmaker) -> None:
    settings = settings_with(methods=[{"type": "native", "name": "staff"}, {"type": "native", "name": "guests"}])
    accounts = AccountService(sessions, default_method="staff")
    await set_password(accounts, "alice", "correct horse", method="guests")
    staff = NativeAuthenticator(settings.auth.methods[0], settings, sessions)
    guests = NativeAuthenticator(settings.auth.methods[1], settings, sessions)
    assert await staff.check_password("alice", "correct horse") is None
    assert await guests.check_password("alice", "correct horse") == Identity("alice")
    with pytest.raises(WrongMethod):
        await accounts.ensure("alice", logged_in=True, method="staff")


async def test_admin_and_allowed_lists_apply_to_every_authenticator(sessions: Sessionmaker) -> None:
    settings = settings_with(type="dummy", dummy_password="pw", allowed_users=["carol"], admin_users=["Root-Admin"])
    backend = DummyAuthenticator(settings.auth.primary, settings, sessions)
    policy = AccessPolicy.from_settings(settings.auth)
    assert await login(backend, policy, "carol", "pw") == Identity("carol", admin=False)
    assert await login(backend, policy, "root-admin", "pw") == Identity("root-admin", admin=True)
    assert await login(backend, policy, "dave", "pw") is None
    assert await login(backend, policy, "carol", "not pw") is None
    with pytest.raises(BadUsername):
        await login(backend, policy, "../carol", "pw")


def test_groups_decide_who_enters_and_who_is_an_admin() -> None:
    method = NativeMethod(allowed_groups=["students"], admin_groups=["staff"])
    policy = AccessPolicy.from_settings(AuthSection())
    student = policy.admit(Identity("Sam", groups=frozenset({"students"})), method)
    assert (student.username, student.admin) == ("sam", False)
    teacher = policy.admit(Identity("tess", groups=frozenset({"staff"})), method)
    assert teacher.admin is True
    with pytest.raises(LoginRefused, match="not in a group that may use this hub"):
        policy.admit(Identity("eve", groups=frozenset({"visitors"})), method)
    with pytest.raises(LoginRefused):
        policy.admit(Identity("eve"), method)  # no groups reported: not a member of any


def test_an_unrestricted_method_lets_everyone_it_accepts_in() -> None:
    policy = AccessPolicy.from_settings(AuthSection())
    assert policy.admit(Identity("anyone"), MethodBase(type="pam")).admin is False


def test_the_dummy_authenticator_warns_at_start() -> None:
    settings = settings_with(type="dummy", dummy_password="pw")
    backend = DummyAuthenticator(settings.auth.primary, settings, None)  # type: ignore[arg-type]
    assert "only for demos" in backend.startup_warnings()[0]


def test_a_public_provider_with_only_admins_listed_lets_only_the_admins_in() -> None:
    from hub.oauth_config import GitHubMethod

    method = GitHubMethod(client_id="x", admin_users=["me"])
    policy = AccessPolicy.from_settings(AuthSection())
    assert policy.admit(Identity("me"), method).admin is True
    with pytest.raises(LoginRefused):
        policy.admit(Identity("random-stranger"), method)


def test_the_hub_wide_lists_belong_to_the_first_method_only() -> None:
    auth = AuthSection(
        methods=[{"type": "native"}, {"type": "dummy", "name": "staff", "password": "pw"}],  # type: ignore[list-item]
        admin_users=["boss"],
        allowed_users=["carol", "boss"],
    )
    policy = AccessPolicy.from_settings(auth)
    assert policy.admit(Identity("boss"), auth.methods[0]).admin is True
    assert policy.admit(Identity("boss"), auth.methods[1]).admin is False  # another method's "boss"
    assert policy.admit(Identity("dave"), auth.methods[1]).username == "dave"  # its own lists are empty: open
    with pytest.raises(LoginRefused):
        policy.admit(Identity("dave"), auth.methods[0])
