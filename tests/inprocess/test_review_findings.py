"""The second review's findings: each would pass against the code before its fix."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.accounts import AccountService
from hub.activity import ActivityTracker
from hub.auth import Identity, PasswordAuthenticator
from hub.auth.native import set_password
from hub.auth.pool import auth_pool
from hub.db import Sessionmaker
from hub.keys import ACCOUNTS, LOGIN_METHODS
from tests.inprocess.conftest import TokenMaker

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def login(client: TestClient, name: str, password: str) -> int:
    page = await (await client.get("/hub/login")).text()
    match = XSRF.search(page)
    assert match
    form = {"_xsrf": match.group(1), "username": name, "password": password}
    response = await client.post("/hub/login", data=form, allow_redirects=False)
    return response.status


def while_checking(app: web.Application, meanwhile: Callable[[str], Awaitable[object]]) -> None:
    """Make the password check run ``meanwhile(username)`` once it has checked (a change racing with it)."""
    backend = app[LOGIN_METHODS].primary
    assert isinstance(backend, PasswordAuthenticator)
    real_check = backend.check_password

    async def check(username: str, password: str) -> Identity | None:
        found = await real_check(username, password)
        await meanwhile(username)
        return found

    backend.check_password = check  # type: ignore[method-assign]  # the race, staged


async def test_a_deleted_users_token_does_not_work_for_the_next_account_of_that_name(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    admin = await tokens_of("admin")
    assert (await app_client.post("/hub/api/users/zed", json={}, headers=auth(admin))).status == 201
    old = await tokens_of("zed")
    assert (await app_client.delete("/hub/api/users/zed", headers=auth(admin))).status == 204
    # SQLite hands the newest deleted id out again: next term's zed has last term's id
    assert (await app_client.post("/hub/api/users/zed", json={}, headers=auth(admin))).status == 201
    assert (await app_client.get("/hub/api/user", headers=auth(old))).status == 401


async def test_a_change_by_another_process_is_not_hidden_by_a_later_change_here(sessions: Sessionmaker) -> None:
    hub, cli = AccountService(sessions), AccountService(sessions)
    await hub.load()
    await cli.load()
    await cli.add(["root"], admin=True)
    assert await hub.sync()
    await cli.set_admin("root", False)  # the CLI demotes root ...
    await hub.add(["someone"])  # ... and the hub writes before its next look
    await hub.sync()
    root = hub.get("root")
    assert root is not None and not root.admin


async def test_a_login_does_not_bring_back_an_account_deleted_while_its_password_was_checked(
    app_client: TestClient,
) -> None:
    app = app_client.server.app
    accounts: AccountService = app[ACCOUNTS]
    await set_password(accounts, "bob", "bob's password")
    while_checking(app, accounts.delete)  # an admin deletes bob meanwhile
    assert await login(app_client, "bob", "bob's password") == 403
    assert accounts.get("bob") is None


async def test_a_password_reset_during_a_login_ends_that_login_too(app_client: TestClient) -> None:
    app = app_client.server.app
    accounts: AccountService = app[ACCOUNTS]
    await set_password(accounts, "bob", "old password")
    while_checking(app, lambda name: set_password(accounts, name, "new password", create=False))  # reset meanwhile
    assert await login(app_client, "bob", "old password") == 302
    home = await app_client.get("/hub/home", allow_redirects=False)
    assert home.status == 302 and "/hub/login" in home.headers["Location"]  # that session does not count


async def test_a_demotion_during_a_login_is_not_undone_by_it(app_client: TestClient) -> None:
    app = app_client.server.app
    accounts: AccountService = app[ACCOUNTS]
    await set_password(accounts, "admin", "admin password")
    while_checking(app, lambda name: accounts.set_admin(name, False))  # demoted meanwhile
    await login(app_client, "admin", "admin password")
    demoted = accounts.get("admin")
    assert demoted is not None and not demoted.admin


async def test_activity_stays_readable_after_it_was_saved(sessions: Sessionmaker, accounts: AccountService) -> None:
    tracker = ActivityTracker(sessions)
    tracker.touch_server("alice")
    seen = tracker.server_latest("alice")
    await tracker.flush()
    assert tracker.server_latest("alice") == seen  # the culler reading now still sees it


async def test_a_form_in_an_unknown_charset_is_a_plain_400(app_client: TestClient) -> None:
    response = await app_client.post(
        "/hub/login",
        data=b"username=a&password=b",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=nope"},
    )
    assert response.status == 400
    api = await app_client.post(
        "/hub/api/users/alice/tokens",
        data=b"{}",
        headers={"Content-Type": "application/json; charset=nope", "Authorization": "token x"},
    )
    assert api.status in (400, 401)


async def test_a_busy_password_pool_refuses_adding_users_before_anything_is_saved(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts: AccountService = app_client.server.app[ACCOUNTS]
    await set_password(accounts, "admin", "admin password")
    assert await login(app_client, "admin", "admin password") == 302
    match = XSRF.search(await (await app_client.get("/hub/admin")).text())
    assert match
    monkeypatch.setattr(auth_pool, "_max_waiting", 0)  # a login flood fills the password pool
    response = await app_client.post("/hub/admin/users", data={"_xsrf": match.group(1), "usernames": "carol"})
    assert response.status == 503
    assert accounts.get("carol") is None  # not half made: no account without a password
