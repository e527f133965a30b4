"""Upgrading a hub: the hub of commit 56aa053 (the last one without migrations) makes users, passwords, a token
and a running server; today's hub, started on the same data, upgrades the database and keeps all of it working."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import yaml

from hub.migrate import head_revision
from tests.client import HubUser, wait_for
from tests.fixtures.hub import ROOT, HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
OLD_COMMIT = "56aa053"
PEOPLE = {"alice": False, "bob": False, "admin": True}


@pytest.fixture(scope="module")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub package of commit 56aa053, run from its own folder with the same virtual environment."""
    folder = tmp_path_factory.mktemp("hub-56aa053")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "hub"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def volume_of(container: Any) -> str:
    container.reload()
    return next(mount["Name"] for mount in container.attrs["Mounts"] if mount["Type"] == "volume")


def container_of(client: docker.DockerClient, prefix: str, name: str) -> Any:
    found = client.containers.list(filters={"label": [f"hub.prefix={prefix}", f"hub.username={name}"]})
    assert len(found) == 1, found
    return found[0]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    connection.close()
    return names


def test_an_upgrade_from_56aa053_keeps_passwords_tokens_and_running_servers(
    hub_factory: HubFactory, old_source: Path, docker_client: docker.DockerClient
) -> None:
    # EVERY FUTURE SCHEMA CHANGE MUST ADD A MIGRATION (hub/migrations/README.md) AND GROW THIS TEST: make, with
    # the old hub, the data the change touches, and check after the upgrade that users still see it working.
    hub = hub_factory(pythonpath=old_source)
    for name, admin in PEOPLE.items():
        hub.add_user(name, password_of(name), admin=admin)
    token = hub.token("alice")
    alice = HubUser(hub.url, "alice")
    assert alice.login(password_of("alice")).url.endswith("/hub/home")
    assert alice.start("echo").get("ready") is True
    assert alice.get("/user/alice/").status_code == 200
    bob = HubUser(hub.url, "bob")
    assert bob.login(password_of("bob")).url.endswith("/hub/home")
    server = container_of(docker_client, hub.prefix, "alice")
    assert server.exec_run(["sh", "-c", "echo kept across the upgrade > /data/note"], user="root").exit_code == 0
    old_volume = volume_of(server)
    database = Path(yaml.safe_load(hub.config_path.read_text())["hub"]["data_dir"]) / "hub.sqlite"
    assert "users" in tables(database) and "alembic_version" not in tables(database)  # the old code made it

    hub.stop()  # SIGTERM: the old hub goes, alice's server stays
    assert hub.process is not None and hub.process.returncode == 0, hub.log()[-3000:]
    server.reload()
    assert server.status == "running"

    hub.pythonpath = None  # today's hub, same configuration, data folder, database and Traefik
    hub.start()
    assert f"marked it as revision 0001 and upgraded it to revision {head_revision()}" in hub.log()
    copies = list(database.parent.glob("hub.sqlite.bak-unversioned-*"))
    assert len(copies) == 1 and copies[0].stat().st_mode & 0o777 == 0o600
    assert "alembic_version" not in tables(copies[0])

    for name in PEOPLE:
        assert HubUser(hub.url, name).login(password_of(name)).url.endswith("/hub/home"), name
    # 0003: the old accounts now belong to the hub's (first) login method, groups and sign-up tables are there.
    with sqlite3.connect(database) as connection:
        owners = dict(connection.execute("SELECT name, auth_method FROM users").fetchall())
        forced = connection.execute("SELECT count(*) FROM users WHERE password_must_change").fetchone()[0]
    connection.close()
    assert owners == {name: "native" for name in PEOPLE}
    assert forced == 0
    assert {"groups", "user_groups", "signup_requests"} <= tables(database)
    me = requests.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert 'data-testid="username">bob' in bob.get("/hub/home").text  # still logged in from before

    owner = HubUser(hub.url, "alice")
    assert owner.login(password_of("alice")).url.endswith("/hub/home")
    page = wait_for(
        lambda: (response := owner.get("/user/alice/")).status_code == 200 and response,
        30,
        "alice's server to answer through the new hub",
    )
    assert page.json()["path"] == "/user/alice/"
    assert container_of(docker_client, hub.prefix, "alice").id == server.id  # adopted, not started again
    stranger = requests.get(f"{hub.url}/user/alice/", allow_redirects=False, timeout=30)
    assert stranger.status_code != 200

    # 0004 (named servers): her old server is her default one, and a named server started next to it shares
    # her files, in a container and behind a route of its own.
    api, auth = f"{hub.url}/hub/api/users/alice", {"Authorization": f"token {token}"}
    servers = requests.get(api, headers=auth, timeout=30).json()["servers"]
    assert list(servers) == [""] and servers[""]["ready"] is True and servers[""]["url"] == "/user/alice/"
    # 0005 (resources chosen at start): the old server has no recorded choices, and the API shows its image only.
    assert servers[""]["user_options"] == {"image": "echo"}
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT user_options, gpu_ids FROM servers").fetchall() == [(None, None)]
        # 0006 (sharing): the tables are there and empty, so nobody holds a share of an old server.
        assert connection.execute("SELECT count(*) FROM shares").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM share_codes").fetchone() == (0,)
        # 0007 (announcements): the table is there and empty, so no page shows a message nobody wrote.
        assert connection.execute("SELECT count(*) FROM announcements").fetchone() == (0,)
        # 0008 (usage): the tables are there; no start ended since the upgrade, and samples count alice's server.
        assert connection.execute("SELECT count(*) FROM spawn_records").fetchone() == (0,)
        assert connection.execute("SELECT coalesce(max(running), 1) FROM usage_samples").fetchone() == (1,)
    connection.close()
    started = requests.post(f"{api}/servers/more", json={"image": "echo"}, headers=auth, timeout=120)
    assert started.status_code in (201, 202), started.text
    wait_for(
        lambda: requests.get(api, headers=auth, timeout=30).json()["servers"].get("more", {}).get("ready"),
        120,
        "alice's named server to start",
    )
    assert owner.get("/user/alice/more/").json()["path"] == "/user/alice/more/"
    named = docker_client.containers.list(filters={"label": [f"hub.prefix={hub.prefix}", "hub.server=more"]})
    assert len(named) == 1 and named[0].id != server.id
    assert named[0].exec_run(["cat", "/data/note"]).output.decode().strip() == "kept across the upgrade"
    removed = requests.delete(f"{api}/servers/more", json={"remove": True}, headers=auth, timeout=60)
    assert removed.status_code == 204
    assert container_of(docker_client, hub.prefix, "alice").id == server.id  # the default one runs on

    # Her files stay hers: a new start after the upgrade mounts the same volume, with her note in it.
    assert owner.stop().status_code == 200
    assert owner.start("echo").get("ready") is True
    restarted = container_of(docker_client, hub.prefix, "alice")
    assert restarted.id != server.id and volume_of(restarted) == old_volume
    assert restarted.exec_run(["cat", "/data/note"]).output.decode().strip() == "kept across the upgrade"
    restarted_model = requests.get(api, headers=auth, timeout=30).json()["servers"][""]
    assert restarted_model["user_options"] == {"image": "echo", "mem_limit": "256m"}  # recorded from now on

    current = hub.cli("db", "current")
    assert current.returncode == 0 and current.stdout == f"{head_revision()} (head)\n", current.stderr
