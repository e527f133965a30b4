"""Importing class lists, exporting users and acting on many users at once: the whole app in process."""

from __future__ import annotations

import asyncio
import html
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from hub import roster_import
from hub.accounts import AccountService
from hub.auth.native import set_password
from hub.db import Sessionmaker, open_database
from hub.groups import GroupService
from hub.keys import ACCOUNTS, GROUPS, SERVERS
from hub.models import ServerState
from hub.servers import ServerManager
from tests.fakes import FakeSpawner

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
PASSWORD_ROW = re.compile(r'<tr data-user="([^"]+)"><td>[^<]+</td><td><code>([^<]+)</code>')


async def xsrf(client: TestClient, path: str) -> str:
    match = XSRF.search(await (await client.get(path)).text())
    assert match, f"no form on {path}"
    return match.group(1)


async def log_in(client: TestClient, name: str, password: str) -> int:
    form = {"_xsrf": await xsrf(client, "/hub/login"), "username": name, "password": password}
    return (await client.post("/hub/login", data=form, allow_redirects=False)).status


async def as_admin(client: TestClient) -> str:
    await set_password(client.server.app[ACCOUNTS], "admin", "admin password")
    assert await log_in(client, "admin", "admin password") == 302
    return await xsrf(client, "/hub/admin/import")


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def preview(client: TestClient, csrf: str, roster: str) -> tuple[int, str]:
    response = await client.post("/hub/admin/import", data={"_xsrf": csrf, "roster": roster})
    return response.status, await response.text()


async def test_an_admin_imports_a_class_list_after_a_preview(app_client: TestClient) -> None:
    app = app_client.server.app
    accounts: AccountService = app[ACCOUNTS]
    groups: GroupService = app[GROUPS]
    await groups.create(["art"], ["alice"])
    csrf = await as_admin(app_client)

    bad = "name,groups,admin\ncarol,physics,no\nBob Smith,,\ndave,,maybe\n"
    status, page = await preview(app_client, csrf, bad)
    assert status == 400
    assert "line 3: name 'Bob Smith' has a space" in text_of(page)
    assert "line 4: admin is 'maybe'" in text_of(page)
    assert "Bob Smith" in page  # the text is kept in the form, to be fixed there
    assert accounts.get("carol") is None

    good = "name,groups,admin\ncarol,physics;maths,no\nalice,physics,yes\nbob,,no\n"
    status, page = await preview(app_client, csrf, good)
    assert status == 200
    shown = text_of(page)
    assert "1 new user, 1 changed, 1 unchanged, 2 new groups. Nothing has changed yet." in shown
    assert "becomes an admin; joins physics; leaves art" in shown
    assert "New groups to create: physics, maths." in shown
    assert accounts.get("carol") is None and "physics" not in groups.groups_of("alice")

    applied = await app_client.post("/hub/admin/import/apply", data={"_xsrf": csrf, "roster": good, "method": ""})
    assert applied.status == 200 and applied.headers["Cache-Control"] == "no-store"
    done = await applied.text()
    passwords = dict(PASSWORD_ROW.findall(done))
    assert list(passwords) == ["carol"]
    link = re.search(r'href="data:text/csv;charset=utf-8,([^"]+)" download="first-passwords.csv"', done)
    assert link and unquote(html.unescape(link.group(1))) == f"name,password\ncarol,{passwords['carol']}\n"

    alice = accounts.get("alice")
    assert alice is not None and alice.admin
    assert groups.groups_of("alice") == {"physics"} and groups.groups_of("carol") == {"physics", "maths"}
    carol = accounts.get("carol")
    assert carol is not None and carol.password_must_change and not carol.admin

    student = TestClient(app_client.server)
    await student.start_server()
    try:
        assert await log_in(student, "carol", passwords["carol"]) == 302
        home = await student.get("/hub/home", allow_redirects=False)
        assert home.status == 302 and home.headers["Location"].startswith("/hub/change-password")
    finally:
        await student.session.close()  # its own cookies; the server is shared

    again = await app_client.post("/hub/admin/import/apply", data={"_xsrf": csrf, "roster": good, "method": ""})
    assert "0 new users, 0 changed, 3 unchanged" in text_of(await again.text())
    assert not PASSWORD_ROW.findall(await again.text())  # a resent form shows no password and changes nothing


async def test_a_file_is_uploaded_and_a_roster_changed_on_its_way_back_is_checked_again(
    app_client: TestClient,
) -> None:
    accounts: AccountService = app_client.server.app[ACCOUNTS]
    csrf = await as_admin(app_client)
    form = FormData()
    form.add_field("_xsrf", csrf)
    form.add_field("file", "\ufeffname;admin\r\nerin;ja\r\n".encode(), filename="class.csv", content_type="text/csv")
    uploaded = await app_client.post("/hub/admin/import", data=form)
    assert uploaded.status == 400 and "line 2: admin is 'ja'" in text_of(await uploaded.text())

    tampered = await app_client.post(
        "/hub/admin/import/apply", data={"_xsrf": csrf, "roster": "name\nerin\n../x\n", "method": ""}
    )
    assert tampered.status == 400 and "line 3: name '../x'" in text_of(await tampered.text())
    assert accounts.get("erin") is None


async def test_nothing_is_imported_when_the_transaction_fails_half_way(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_client.server.app
    csrf = await as_admin(app_client)

    async def fail_after_the_new_users(*_: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(roster_import, "write_changes", fail_after_the_new_users)
    roster = "name,groups\nfrank,physics\ngina,physics\nalice,physics\n"
    failed = await app_client.post("/hub/admin/import/apply", data={"_xsrf": csrf, "roster": roster, "method": ""})
    assert failed.status == 500
    assert app[ACCOUNTS].get("frank") is None and app[ACCOUNTS].get("gina") is None
    assert (await app[GROUPS].page()).groups == []  # the group is not left behind either


async def test_an_admin_cannot_demote_themselves_by_import_and_others_cannot_import(app_client: TestClient) -> None:
    csrf = await as_admin(app_client)
    status, page = await preview(app_client, csrf, "name,admin\nadmin,no\n")
    assert status == 400 and "you cannot take away your own admin rights" in text_of(page)

    await set_password(app_client.server.app[ACCOUNTS], "bob", "bob password 123")
    other = TestClient(app_client.server)
    await other.start_server()
    try:
        assert await log_in(other, "bob", "bob password 123") == 302
        assert (await other.get("/hub/admin/import")).status == 403
        assert (await other.get("/hub/admin/export.csv")).status == 403
        bob_csrf = await xsrf(other, "/hub/home")
        refused = await other.post("/hub/admin/bulk", data={"_xsrf": bob_csrf, "action": "export", "users": "alice"})
        assert refused.status == 403
    finally:
        await other.session.close()


async def test_the_export_is_the_import_format(app_client: TestClient) -> None:
    await app_client.server.app[GROUPS].create(["physics"], ["alice", "bob"])
    csrf = await as_admin(app_client)
    everyone = await app_client.get("/hub/admin/export.csv")
    assert everyone.headers["Content-Disposition"] == 'attachment; filename="users.csv"'
    assert await everyone.text() == "name,groups,admin\nadmin,,yes\nalice,physics,no\nbob,physics,no\n"
    chosen = await app_client.post("/hub/admin/bulk", data={"_xsrf": csrf, "action": "export", "users": "bob"})
    assert await chosen.text() == "name,groups,admin\nbob,physics,no\n"
    status, page = await preview(app_client, csrf, await everyone.text())
    assert status == 200 and "0 new users, 0 changed, 3 unchanged" in text_of(page)


async def wait_running(servers: ServerManager, *names: str) -> None:
    for _ in range(200):
        views = [await servers.view(name) for name in names]
        if all(view is not None and view.state == ServerState.RUNNING for view in views):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the servers of {names} did not start")


async def test_bulk_start_stop_and_delete_servers_of_a_selection_or_a_group(
    app_client: TestClient, spawner: FakeSpawner
) -> None:
    app = app_client.server.app
    servers: ServerManager = app[SERVERS]
    await app[GROUPS].create(["physics"], ["alice", "bob"])
    csrf = await as_admin(app_client)
    choices = await (await app_client.get("/hub/admin/bulk")).text()
    assert '<option value="physics">physics</option>' in choices

    started = await app_client.post(
        "/hub/admin/bulk", data={"_xsrf": csrf, "action": "start", "image": "app", "group": "physics"}
    )
    assert "Starting App for alice, bob." in text_of(await started.text())
    await wait_running(servers, "alice", "bob")
    await servers.start("alice", servers.settings.images[0], "extra")
    await asyncio.sleep(0.05)

    again = await app_client.post(
        "/hub/admin/bulk", data=[("_xsrf", csrf), ("action", "start"), ("image", "app"), ("users", "alice")]
    )
    assert "Nothing to do for alice (running already)." in text_of(await again.text())

    ask = await app_client.post(
        "/hub/admin/bulk", data=[("_xsrf", csrf), ("action", "stop"), ("users", "bob"), ("users", "admin")]
    )
    page = text_of(await ask.text())
    assert "Stop these servers?" in page and "bob : default server (running)" in page
    assert "Nothing to do for: admin." in page
    assert (await servers.view("bob")).state == ServerState.RUNNING  # type: ignore[union-attr]
    unconfirmed = await app_client.post(
        "/hub/admin/bulk/confirm", data={"_xsrf": csrf, "action": "stop", "users": "bob"}
    )
    assert unconfirmed.status == 400
    stopped = await app_client.post(
        "/hub/admin/bulk/confirm", data={"_xsrf": csrf, "action": "stop", "users": "bob", "confirm": "yes"}
    )
    assert "Stopped the servers of bob." in text_of(await stopped.text())
    assert (await servers.view("bob")).state == ServerState.STOPPED  # type: ignore[union-attr]

    ask = await app_client.post("/hub/admin/bulk", data={"_xsrf": csrf, "action": "delete", "users": "alice"})
    assert "alice : default server (running), server extra (running)" in text_of(await ask.text())
    deleted = await app_client.post(
        "/hub/admin/bulk/confirm", data={"_xsrf": csrf, "action": "delete", "users": "alice", "confirm": "yes"}
    )
    assert "Deleted the servers of alice." in text_of(await deleted.text())
    assert (await servers.view("alice")).state == ServerState.STOPPED  # type: ignore[union-attr]
    assert await servers.view("alice", "extra") is None  # the named server is forgotten
    assert app[ACCOUNTS].get("alice") is not None  # the account stays
    assert not spawner.servers

    nobody = await app_client.post("/hub/admin/bulk", data={"_xsrf": csrf, "action": "stop"})
    assert nobody.status == 400 and "Choose users with the check boxes" in text_of(await nobody.text())
    unknown = await app_client.post("/hub/admin/bulk", data={"_xsrf": csrf, "action": "stop", "group": "nope"})
    assert unknown.status == 404


def hub_cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_imports_with_a_dry_run_and_a_passwords_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"hub": {"data_dir": str(tmp_path / "data")}, "images": [{"name": "lab", "image": "x:1"}]})
    )
    roster = tmp_path / "class.csv"
    roster.write_text("name,groups,admin\nalice,physics,no\nBob Smith,,\n")
    bad = await asyncio.to_thread(hub_cli, config, "user", "import", str(roster))
    assert bad.returncode == 1 and "line 3: name 'Bob Smith' has a space" in bad.stderr

    roster.write_text("name,groups,admin\nalice,physics,no\nbob,,yes\n")
    dry = await asyncio.to_thread(hub_cli, config, "user", "import", str(roster), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "new: alice (groups physics)" in dry.stdout and "new group: physics" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout

    out = tmp_path / "passwords.csv"
    umask = os.umask(0)  # even where new files would be readable by everyone, the passwords file is not
    try:
        done = await asyncio.to_thread(hub_cli, config, "user", "import", str(roster), "--passwords-out", str(out))
    finally:
        os.umask(umask)
    assert done.returncode == 0, done.stderr
    assert f"first passwords of 2 new user(s) written to {out}" in done.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == "name,password" and [line.split(",")[0] for line in lines[1:]] == ["alice", "bob"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert lines[1].split(",")[1] not in done.stdout  # written to the file only
    assert "warning" not in done.stderr

    roster.write_text("name\ncarol\n")
    taken = await asyncio.to_thread(hub_cli, config, "user", "import", str(roster), "--passwords-out", str(out))
    assert taken.returncode == 1 and "exists already" in taken.stderr
    printed = await asyncio.to_thread(hub_cli, config, "user", "import", str(roster))
    assert re.search(r"^name,password\ncarol,\S{16,}$", printed.stdout, re.MULTILINE)
    assert "warning: the new users' first passwords follow on the standard output" in printed.stderr
    assert "shown only this once" in printed.stderr
    assert "`--passwords-out FILE` writes them to a new file only you can read (mode 0600)" in printed.stderr

    engine, sessions = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hub.sqlite'}")
    try:
        found = AccountService(sessions)
        await found.load()
        bob, carol = found.get("bob"), found.get("carol")
        assert bob is not None and bob.admin and carol is not None and carol.password_must_change
        assert found.get("alice") is not None
    finally:
        await engine.dispose()


async def test_new_built_in_accounts_get_a_first_password_of_at_least_sixteen_characters(
    sessions: Sessionmaker, accounts: AccountService
) -> None:
    from hub.roster import parse_roster

    result = await roster_import.apply_import(
        sessions, accounts, parse_roster("name\nzed\n"), method="native", native=True, min_password_length=8
    )
    assert [name for name, _ in result.passwords] == ["zed"] and len(result.passwords[0][1]) >= 16
    assert accounts.get("zed") is not None


async def test_a_roster_over_the_size_limit_gets_a_plain_answer(app_client: TestClient) -> None:
    csrf = await as_admin(app_client)
    form = FormData({"_xsrf": csrf})
    form.add_field("file", b"name\n" + b"x" * (1024 * 1024 + 10), filename="class.csv", content_type="text/csv")
    response = await app_client.post("/hub/admin/import", data=form)
    assert response.status == 400
    assert "too large (at most 1 MB)" in text_of(await response.text())
