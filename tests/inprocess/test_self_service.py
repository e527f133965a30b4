"""Accounts people look after themselves (built-in method): change password, admin resets, sign-up with approval,
and the minimum password length wherever a password is set."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from hub import signups
from hub.accounts import AccountService
from hub.app import create_app
from hub.auth.native import set_password
from hub.cli import main as cli_main
from hub.config import Settings
from hub.first_admin import make_setup_link
from hub.handlers.account import MUST_CHANGE
from hub.keys import ACCOUNTS, SESSIONS, SIGNUPS
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.conftest import IMAGES

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
TEMPORARY = re.compile(r'<code id="temporary-password">([^<]+)</code>')
MIN = 10


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A hub whose built-in method takes sign-ups, a shared-password method beside it, passwords of 10+."""
    return Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "data"},
        auth={
            "methods": [
                {"type": "native", "allow_signup": True, "admin_users": ["admin"]},
                {"type": "dummy", "password": "shared secret"},
            ],
            "min_password_length": MIN,
        },
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


@pytest.fixture
async def hub(app_client: TestClient) -> TestClient:
    """The app of app_client with passwords for alice, bob and admin."""
    accounts: AccountService = app_client.app[ACCOUNTS]
    for name in ("alice", "bob", "admin"):
        await set_password(accounts, name, f"{name} password", create=False)
    return app_client


@pytest.fixture
async def other_browser(app_client: TestClient) -> AsyncIterator[TestClient]:
    """A second browser (its own cookies) on the same hub."""
    client: TestClient = TestClient(app_client.server)
    await client.start_server()
    yield client
    await client.session.close()


async def xsrf(client: TestClient, path: str) -> str:
    match = XSRF.search(await (await client.get(path)).text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def post(client: TestClient, path: str, data: dict[str, str], form_at: str | None = None):  # type: ignore[no-untyped-def]
    form = {"_xsrf": await xsrf(client, form_at or path), **data}
    return await client.post(path, data=form, allow_redirects=False)


async def login(client: TestClient, name: str, password: str, method: str = "native") -> tuple[int, str]:
    response = await post(client, "/hub/login", {"username": name, "password": password, "method": method})
    return response.status, response.headers.get("Location", "") or await response.text()


async def logged_in(client: TestClient) -> bool:
    response = await client.get("/hub/home", allow_redirects=False)
    return response.status == 200


async def change(client: TestClient, current: str, new: str, again: str | None = None):  # type: ignore[no-untyped-def]
    fields = {"current_password": current, "new_password": new, "new_password_again": again or new}
    return await post(client, "/hub/change-password", fields)


# -- changing one's password -------------------------------------------------------------------


async def test_changing_the_password_needs_the_right_current_one(hub: TestClient) -> None:
    await login(hub, "alice", "alice password")
    response = await change(hub, "not my password", "a brand new password")
    assert response.status == 403
    assert "Your current password is not right." in await response.text()
    assert (await login(TestClient(hub.server), "alice", "alice password"))[0] == 302  # the old one still works


async def test_a_new_password_shorter_than_the_minimum_is_refused(hub: TestClient) -> None:
    await login(hub, "alice", "alice password")
    response = await change(hub, "alice password", "short")
    assert response.status == 400
    assert f"The password must have at least {MIN} characters." in await response.text()
    response = await change(hub, "alice password", "long enough one", "long enough two")
    assert response.status == 400
    assert "The two new passwords differ." in await response.text()


async def test_changing_the_password_ends_other_sessions_but_keeps_this_one(
    hub: TestClient, other_browser: TestClient
) -> None:
    await login(hub, "alice", "alice password")
    await login(other_browser, "alice", "alice password")
    assert await logged_in(other_browser)
    response = await change(hub, "alice password", "alice's new password")
    assert response.status == 303
    page = await hub.get(response.headers["Location"])
    assert "Your password is changed. You were logged out everywhere else." in await page.text()
    assert await logged_in(hub)
    assert not await logged_in(other_browser)
    assert (await login(other_browser, "alice", "alice password"))[0] == 403
    assert (await login(other_browser, "alice", "alice's new password"))[0] == 302


async def test_guessing_the_current_password_is_locked_out(hub: TestClient) -> None:
    await login(hub, "alice", "alice password")
    statuses = [(await change(hub, f"guess {number}", "a brand new password")).status for number in range(6)]
    assert statuses == [403] * 5 + [429]
    response = await change(hub, "alice password", "a brand new password")
    assert response.status == 429  # even the right one waits for the lock-out to end
    assert "Too many wrong passwords" in await response.text()


async def test_an_account_of_another_method_is_told_its_provider_keeps_the_password(hub: TestClient) -> None:
    assert (await login(hub, "dave", "shared secret", method="dummy"))[0] == 302
    page = await (await hub.get("/hub/change-password")).text()
    assert "Your password is managed by your login provider" in page
    assert 'id="change-password"' not in await (await hub.get("/hub/home")).text()
    response = await change(hub, "shared secret", "a brand new password")
    assert response.status == 400


async def test_home_links_to_the_change_password_page_for_built_in_accounts(hub: TestClient) -> None:
    await login(hub, "alice", "alice password")
    assert 'id="change-password"' in await (await hub.get("/hub/home")).text()


# -- admin resets -------------------------------------------------------------------------------


async def reset(admin: TestClient, name: str):  # type: ignore[no-untyped-def]
    path = f"/hub/admin/users/{name}/password"
    return await post(admin, path, {"confirm": "yes"}, form_at=path)


async def test_an_admin_reset_shows_a_temporary_password_once_and_forces_a_change(
    hub: TestClient, other_browser: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await login(other_browser, "bob", "bob password")
    await login(hub, "admin", "admin password")
    panel = await (await hub.get("/hub/admin")).text()
    assert "/hub/admin/users/bob/password" in panel and "/hub/admin/users/admin/password" not in panel
    confirm = await hub.get("/hub/admin/users/bob/password")
    assert "Reset the password of bob?" in await confirm.text()
    response = await reset(hub, "bob")
    assert response.status == 303
    shown = await hub.get(response.headers["Location"])
    assert shown.headers["Cache-Control"] == "no-store"
    match = TEMPORARY.search(await shown.text())
    assert match
    temporary = match.group(1)
    again = await (await hub.get(response.headers["Location"])).text()
    assert temporary not in again and "is not shown again" in again  # once
    assert len(temporary) >= 16
    assert temporary not in caplog.text  # never logged
    assert not await logged_in(other_browser)  # bob's sessions ended
    assert (await login(other_browser, "bob", "bob password"))[0] == 403

    status, location = await login(other_browser, "bob", temporary)
    assert status == 302 and urlsplit(location).path == "/hub/change-password"
    home = await other_browser.get("/hub/home", allow_redirects=False)
    assert home.status == 302 and urlsplit(home.headers["Location"]).path == "/hub/change-password"
    assert MUST_CHANGE in await (await other_browser.get("/hub/change-password")).text()
    # Nor does the temporary password open the REST API (a token made with it would outlive the change).
    api_xsrf = await xsrf(other_browser, "/hub/change-password")
    made = await other_browser.post("/hub/api/users/bob/tokens", json={}, headers={"X-XSRF-Token": api_xsrf})
    assert made.status == 403 and "Choose a new password" in (await made.json())["message"]
    response = await change(other_browser, temporary, "bob's own password")
    assert response.status == 303
    assert await logged_in(other_browser)
    account = other_browser.app[ACCOUNTS].get("bob")
    assert account is not None and not account.password_must_change


async def test_a_reset_needs_an_admin_and_the_confirmation(hub: TestClient, other_browser: TestClient) -> None:
    await login(other_browser, "alice", "alice password")
    assert (await reset(other_browser, "bob")).status == 403
    await login(hub, "admin", "admin password")
    path = "/hub/admin/users/bob/password"
    assert (await post(hub, path, {}, form_at=path)).status == 400
    assert (await login(TestClient(hub.server), "bob", "bob password"))[0] == 302  # unchanged
    assert "temporary-password" not in await (await hub.get(f"{path}/done")).text()
    assert (await hub.get("/hub/admin/users/admin/password")).status == 400  # one's own: change it instead


async def test_an_account_of_another_method_has_no_reset(hub: TestClient) -> None:
    await hub.app[ACCOUNTS].add(["dave"], method="dummy")
    await login(hub, "admin", "admin password")
    assert "/hub/admin/users/dave/password" not in await (await hub.get("/hub/admin")).text()
    assert (await reset(hub, "dave")).status == 400


# -- sign-up with approval ------------------------------------------------------------------------


async def sign_up(client: TestClient, name: str, password: str, again: str | None = None):  # type: ignore[no-untyped-def]
    fields = {"username": name, "password": password, "password_again": again or password}
    return await post(client, "/hub/signup", fields)


async def check_status(client: TestClient, name: str, password: str) -> tuple[int, str]:
    response = await post(client, "/hub/signup/status", {"username": name, "password": password})
    return response.status, await response.text()


async def test_sign_up_is_off_unless_a_built_in_method_allows_it(tmp_path: Path) -> None:
    plain = Settings(images=IMAGES, hub={"data_dir": tmp_path / "plain"})
    client = TestClient(TestServer(create_app(plain, spawner=FakeSpawner(), proxy=FakeProxy())))
    await client.start_server()
    try:
        assert (await client.get("/hub/signup")).status == 404
        assert (await client.get("/hub/signup/status")).status == 404
    finally:
        await client.close()


async def test_a_request_waits_for_an_admin_then_the_person_logs_in(hub: TestClient, other_browser: TestClient) -> None:
    response = await sign_up(other_browser, "Carol", "carol's password")
    assert response.status == 303
    page = await (await other_browser.get(response.headers["Location"])).text()
    assert "Your request is waiting for an admin&#39;s approval." in page and "carol" in page
    status, text = await login(other_browser, "carol", "carol's password")
    assert status == 403 and "Your request is waiting for an admin&#39;s approval." in text
    status, text = await login(other_browser, "carol", "a wrong password")
    assert status == 403 and "Invalid user name or password." in text  # nobody else learns it exists
    assert (await check_status(other_browser, "carol", "a wrong password"))[0] == 403
    status, text = await check_status(other_browser, "carol", "carol's password")
    assert status == 200 and 'data-state="pending"' in text

    await login(hub, "admin", "admin password")
    assert "Sign-up requests (1 waiting)" in await (await hub.get("/hub/admin")).text()
    listing = await (await hub.get("/hub/admin/signups")).text()
    match = re.search(r'action="(/hub/admin/signups/\d+/approve)"', listing)
    assert match and 'data-request="carol"' in listing
    approved = await post(hub, match.group(1), {}, form_at="/hub/admin/signups")
    assert approved.status == 303
    assert "Approved: carol can log in now." in await (await hub.get("/hub/admin/signups")).text()
    account = hub.app[ACCOUNTS].get("carol")
    assert account is not None and account.method == "native" and not account.admin

    status, text = await check_status(other_browser, "carol", "carol's password")
    assert 'data-state="approved"' in text and "Log in now" in text
    assert (await login(other_browser, "carol", "carol's password"))[0] == 302


async def test_a_rejected_request_says_so_and_keeps_its_name(hub: TestClient, other_browser: TestClient) -> None:
    assert (await sign_up(other_browser, "erin", "erin's password")).status == 303
    await login(hub, "admin", "admin password")
    listing = await (await hub.get("/hub/admin/signups")).text()
    match = re.search(r'action="(/hub/admin/signups/\d+/reject)"', listing)
    assert match
    assert (await post(hub, match.group(1), {}, form_at="/hub/admin/signups")).status == 303
    assert "No requests are waiting." in await (await hub.get("/hub/admin/signups")).text()
    assert (await post(hub, match.group(1), {}, form_at="/hub/admin/signups")).status == 404  # decided already
    assert hub.app[ACCOUNTS].get("erin") is None
    status, text = await check_status(other_browser, "erin", "erin's password")
    assert 'data-state="rejected"' in text and "turned down" in text
    status, text = await login(other_browser, "erin", "erin's password")
    assert status == 403 and "Your request for an account was turned down." in text
    response = await sign_up(other_browser, "erin", "another password")
    assert response.status == 409 and "This name is taken." in await response.text()


async def test_sign_up_refuses_taken_and_reserved_names_and_weak_passwords(hub: TestClient) -> None:
    cases = [
        (("alice", "a long password"), 409, "This name is taken."),  # an account
        (("admin", "a long password"), 409, "This name is taken."),  # would be an admin at login
        (("frank", "short"), 400, f"at least {MIN} characters"),
        (("frank", "a long password", "another long one"), 400, "The two passwords differ."),
        (("-bad name-", "a long password"), 400, ""),
    ]
    for args, status, text in cases:
        response = await sign_up(hub, *args)
        assert response.status == status, args
        assert text in await response.text()
    assert (await sign_up(hub, "frank", "a long password")).status == 303
    response = await sign_up(hub, "frank", "a long password")
    assert response.status == 409  # another request holds it


async def test_sign_up_is_throttled_per_client(hub: TestClient) -> None:
    for name in ("gina", "hank", "ivan"):
        assert (await sign_up(hub, name, "a long password")).status == 303
    response = await sign_up(hub, "jane", "a long password")
    assert response.status == 429
    assert "Too many sign-up requests came from your network" in await response.text()
    assert hub.app[SIGNUPS].limit is not None
    assert await hub.app[SIGNUPS].count_pending() == 3


async def test_sign_up_stops_when_too_many_requests_wait(hub: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signups, "MAX_PENDING", 1)
    assert (await sign_up(hub, "kate", "a long password")).status == 303
    response = await sign_up(hub, "liam", "a long password")
    assert response.status == 429
    assert "Many sign-up requests are waiting for an admin" in await response.text()


async def test_approving_never_overwrites_an_account_made_meanwhile(hub: TestClient) -> None:
    assert (await sign_up(hub, "mona", "mona's password")).status == 303
    app = hub.app
    accounts: AccountService = app[ACCOUNTS]
    await set_password(accounts, "mona", "the admin's choice")  # an admin made mona directly meanwhile
    (pending,) = await app[SIGNUPS].pending()
    await login(hub, "admin", "admin password")
    response = await post(hub, f"/hub/admin/signups/{pending.id}/approve", {}, form_at="/hub/admin/signups")
    assert response.status == 409
    other: TestClient = TestClient(hub.server)
    assert (await login(other, "mona", "mona's password"))[0] == 403
    assert (await login(other, "mona", "the admin's choice"))[0] == 302


# -- minimum length wherever a password is set ----------------------------------------------------


async def test_the_setup_page_refuses_a_short_first_admin_password(settings: Settings) -> None:
    client = TestClient(TestServer(create_app(settings, spawner=FakeSpawner(), proxy=FakeProxy())))
    await client.start_server()
    try:
        link = await make_setup_link(client.app[SESSIONS], "http://hub.test")
        assert link is not None
        path = link.removeprefix("http://hub.test")
        token = path.split("token=", 1)[1]
        fields = {"token": token, "username": "root", "password": "short", "password_again": "short"}
        response = await post(client, "/hub/setup", fields, form_at=path)
        assert response.status == 400
        assert f"at least {MIN} characters" in await response.text()
        assert client.app[ACCOUNTS].get("root") is None
    finally:
        await client.close()


def test_the_command_line_refuses_a_short_password(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp_path / "cli-data")},
                "images": IMAGES,
                "auth": {"type": "native", "min_password_length": MIN},
                "traefik": {"dynamic_dir": str(tmp_path / "routes")},
            }
        )
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["--config", str(config), "user", "add", "zoe", "--password-stdin"]) != 0
    assert f"at least {MIN} characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough now\n"))
    assert cli_main(["--config", str(config), "user", "add", "zoe", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert cli_main(["--config", str(config), "user", "password", "zoe", "--password-stdin"]) != 0
    assert f"at least {MIN} characters" in capsys.readouterr().err
