"""Named servers for real: from the home page, alice runs the echo app as her default server and JupyterLab as a
server named ``work``, side by side, each in its own container behind its own route; nobody else reaches them;
stopping and deleting one leaves the other running, and no container is left behind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.client import HubUser, wait_for
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]


def containers_of(docker_client: Any, hub: HubProcess, name: str) -> dict[str, Any]:
    """alice's containers by the server they belong to ("" for the default one)."""
    found = docker_client.containers.list(
        all=True, filters={"label": [f"hub.prefix={hub.prefix}", f"hub.username={name}"]}
    )
    return {container.labels.get("hub.server", ""): container for container in found}


def test_a_user_runs_two_servers_side_by_side_from_the_home_page(
    hub: HubProcess, page: Page, docker_client: Any
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation of "Delete"
    log_in(page, hub, "alice")

    # the default server: the echo app, at /user/alice/
    page.click("#start")
    page.check("input[name=image][value=echo]")
    page.click("button#start")
    page.wait_for_url(re.compile(r"/user/alice/$"), timeout=120_000)
    expect(page.locator("body")).to_contain_text('"path": "/user/alice/"')

    # a second one, named work: JupyterLab at /user/alice/work/
    page.goto(f"{hub.url}/hub/home")
    page.fill("#new-server input[name=server]", "work")
    page.click("#add-server")
    expect(page.locator("h1")).to_contain_text("“work”")
    page.check("input[name=image][value=jupyterlab]")
    with page.expect_navigation(url=re.compile(r"/hub/spawn-pending/alice/work$")):
        page.click("button#start")
    page.wait_for_url(re.compile(r"/user/alice/work/lab"), timeout=120_000)
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.wait_for(timeout=60_000)

    # both answer, each with its own token (the echo app refuses any other)
    page.goto(f"{hub.url}/user/alice/")
    expect(page.locator("body")).to_contain_text('"path": "/user/alice/"')
    status = page.request.get(f"{hub.url}/user/alice/work/api/status")
    assert status.status == 200 and "started" in status.json()
    containers = containers_of(docker_client, hub, "alice")
    assert set(containers) == {"", "work"}
    assert containers[""].name != containers["work"].name

    # the home page lists the named one, running
    page.goto(f"{hub.url}/hub/home")
    row = page.locator("#named-servers tr[data-server=work]")
    expect(row.locator(".state")).to_have_attribute("data-state", "running")
    expect(row.locator("a.open")).to_have_attribute("href", "/user/alice/work/lab")

    # nobody else reaches either server, not even through the path
    bob = HubUser(hub.url, "bob")
    assert bob.login(password_of("bob")).url.endswith("/hub/home")
    for path in ("/user/alice/work/api/status", "/user/alice/", "/user/bob/../alice/work/api/status"):
        code, _, _ = bob.raw_get(path)
        assert code == 403, path
    anonymous = HubUser(hub.url, "nobody")
    code, _, _ = anonymous.raw_get("/user/alice/work/api/status")
    assert code in (302, 401)

    # stop the named server: its container and route go, the default server keeps running
    row.locator("button.stop").click()
    expect(row.locator(".state")).to_have_attribute("data-state", "stopped")
    wait_for(lambda: set(containers_of(docker_client, hub, "alice")) == {""}, 30, "the work container to go")
    page.goto(f"{hub.url}/user/alice/")
    expect(page.locator("body")).to_contain_text('"path": "/user/alice/"')

    # delete it: the name is gone from the list (and free again)
    page.goto(f"{hub.url}/hub/home")
    page.locator("#named-servers tr[data-server=work] button.delete").click()
    expect(page.locator("#named-servers tr[data-server=work]")).to_have_count(0)

    # stopping the default server leaves no container of alice at all
    page.click("#stop")
    expect(page.locator(".status")).to_have_attribute("data-state", "stopped")
    wait_for(lambda: not containers_of(docker_client, hub, "alice"), 30, "alice's containers to go")


def test_the_api_starts_and_removes_a_named_server_of_a_real_hub(hub: HubProcess, docker_client: Any) -> None:
    token = hub.token("bob")
    user = HubUser(hub.url, "bob")
    headers = {"Authorization": f"token {token}"}
    api = f"{hub.url}/hub/api/users/bob"
    started = user.http.post(f"{api}/servers/app", json={"image": "echo"}, headers=headers, timeout=120)
    assert started.status_code in (201, 202), started.text
    wait_for(
        lambda: user.http.get(api, headers=headers, timeout=30).json()["servers"].get("app", {}).get("ready"),
        120,
        "bob's server app to be ready",
    )
    answer = user.http.get(f"{hub.url}/user/bob/app/", headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["path"] == "/user/bob/app/"
    assert set(containers_of(docker_client, hub, "bob")) == {"app"}
    removed = user.http.delete(f"{api}/servers/app", json={"remove": True}, headers=headers, timeout=60)
    assert removed.status_code == 204
    assert not containers_of(docker_client, hub, "bob")
    listed = user.http.get(f"{api}?include_stopped_servers", headers=headers, timeout=30).json()
    assert "app" not in listed["servers"]
