"""Starts that go wrong say why, in words, and leave nothing running."""

from __future__ import annotations

import re

import docker
import pytest
from playwright.sync_api import Page, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


@pytest.mark.browser
def test_a_container_that_exits_shows_its_exit_code_and_log(
    hub: HubProcess, page: Page, docker_client: docker.DockerClient
) -> None:
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("input[name=image][value=broken]")
    page.click("button#start")
    expect(page.locator("#error-message")).to_contain_text("exit code 3", timeout=60_000)
    expect(page.locator("#error-log")).to_contain_text("settings file is missing")
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-alice"})
    page.goto(f"{hub.url}/hub/home")
    expect(page.get_by_role("alert")).to_contain_text("exit code 3")


def test_an_image_that_cannot_be_pulled_is_named_in_the_error(hub: HubProcess) -> None:
    bob = HubUser(hub.url, "bob")
    bob.login(password_of("bob"))
    last = bob.start("missing")
    assert last.get("failed") is True
    assert "127.0.0.1:9/hubtest/missing:latest could not be pulled" in str(last["message"])
    page = bob.get("/hub/spawn-pending/bob")
    assert "could not be pulled" in page.text


def test_a_form_without_csrf_token_is_refused(hub: HubProcess, docker_client: docker.DockerClient) -> None:
    admin = HubUser(hub.url, "admin")
    admin.login(password_of("admin"))
    response = admin.http.post(f"{hub.url}/hub/spawn", data={"image": "echo"}, timeout=30)
    assert response.status_code == 403
    assert "This form has expired or did not come from this hub" in response.text
    assert not docker_client.containers.list(all=True, filters={"name": f"{hub.prefix}-user-admin"})


@pytest.mark.parametrize(
    "next_url, landing",
    [
        ("/hub/spawn", "/hub/spawn"),
        ("https://evil.example/", "/hub/home"),
        ("//evil.example/x", "/hub/home"),
        ("/\\evil.example", "/hub/home"),
    ],
)
def test_login_redirects_only_to_this_hub(hub: HubProcess, next_url: str, landing: str) -> None:
    user = HubUser(hub.url, "alice")
    xsrf = user.xsrf("/hub/login")
    response = user.http.post(
        f"{hub.url}/hub/login",
        timeout=30,
        allow_redirects=False,
        data={"_xsrf": xsrf, "username": "alice", "password": password_of("alice"), "next": next_url},
    )
    assert response.status_code == 302
    assert re.sub(r"^https?://[^/]+", "", response.headers["Location"]) == landing
