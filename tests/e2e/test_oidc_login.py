"""OpenID Connect login end to end: the real hub behind Traefik, a real OpenID provider (npm's oidc-provider)
with its own login page, and Chromium landing in JupyterLab. Every refusal ends on a page that says
what happened, and makes no account."""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.fixtures.hub import HubFactory, HubProcess
from tests.fixtures.oidc_provider import OIDCProvider, password_of_oidc, sign_in_at_provider
from tests.fixtures.traefik import free_port

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]
SECRET_ENV = {"PROJECT_TOKEN": "project_token", "PROVIDER_ACCESS_TOKEN": "access_token"}


@pytest.fixture(scope="module")
def sso_hub(hub_factory: HubFactory, oidc_provider: OIDCProvider) -> Iterator[HubProcess]:
    """A hub whose only ways in are the test provider ("Test SSO") and the same provider spoiled in three ways."""
    client_id, secret = f"hub-e2e-{free_port()}", "e2e-client-secret"

    def method(name: str, title: str, **options: Any) -> dict[str, Any]:
        return {
            "type": "oidc",
            "name": name,
            "display_name": title,
            "issuer": oidc_provider.issuer,
            "client_id": client_id,
            "client_secret": secret,
            "scope": ["openid", "profile", "email", "groups", "hub"],
            "allowed_groups": ["hub-users"],
            "admin_groups": ["hub-admins"],
            "http_timeout": 3,
            **options,
        }

    auth = {
        "methods": [
            method("sso", "Test SSO", auth_state_env=SECRET_ENV),
            method("sso-other-key", "Forged SSO", token_url=oidc_provider.misbehaving_token_url("other-key")),
            method("sso-expired", "Slow SSO", token_url=oidc_provider.misbehaving_token_url("expired")),
            method("sso-down", "Sleeping SSO", issuer=f"http://127.0.0.1:{free_port()}"),
        ]
    }
    hub = hub_factory(auth=auth)
    oidc_provider.register_client(f"{hub.url}/hub/oauth_callback", client_id, secret)
    yield hub


def alert(response: requests.Response) -> str:
    match = re.search(r'role="alert">(.*?)</p>', response.text, re.S)
    assert match, f"no message on the page ({response.status_code}): {response.text[:400]}"
    return html.unescape(match.group(1))


def users(hub: HubProcess) -> list[str]:
    listing = hub.cli("user", "list")
    assert listing.returncode == 0, listing.stderr
    return [line.split("\t")[0] for line in listing.stdout.splitlines()]


def provider_answer(hub: HubProcess, method: str, name: str, cancel: bool = False) -> tuple[requests.Session, str]:
    """Start a login with ``method`` on the hub and sign in at the provider: (browser, URL back to the hub)."""
    http = requests.Session()
    response = http.get(f"{hub.url}/hub/oauth_login", params={"method": method}, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:400]
    back = sign_in_at_provider(http, response.headers["Location"], name, f"{hub.url}/hub/oauth_callback", cancel=cancel)
    return http, back


def logged_in(http: requests.Session, hub: HubProcess) -> bool:
    return http.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 200


def test_alice_logs_in_at_the_provider_and_her_token_reaches_her_server_only(
    sso_hub: HubProcess, page: Page, docker_client: Any
) -> None:
    page.goto(f"{sso_hub.url}/hub/login")
    page.get_by_role("link", name="Log in with Test SSO").click()
    expect(page.get_by_role("heading", name="Sign in to Test Provider")).to_be_visible()
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", password_of_oidc("alice"))
    page.click("#sign-in")
    expect(page.get_by_test_id("username")).to_have_text("alice")

    page.goto(f"{sso_hub.url}/hub/spawn")
    page.check("input[name=image][value=jupyterlab]")
    page.click("button#start")
    page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=120_000)
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.wait_for(timeout=60_000)

    container = docker_client.containers.get(f"{sso_hub.prefix}-user-alice")
    environment = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert environment["PROJECT_TOKEN"] == "project-token-of-alice"
    access_token = environment["PROVIDER_ACCESS_TOKEN"]
    assert len(access_token) > 20
    with sqlite3.connect(sso_hub.config_path.parent / "data" / "hub.sqlite") as db:
        (stored,) = db.execute("SELECT auth_state FROM users WHERE name = 'alice'").fetchone()
    assert stored and "project-token-of-alice" not in stored and access_token not in stored
    assert "project-token-of-alice" not in sso_hub.log() and access_token not in sso_hub.log()


@pytest.mark.parametrize(
    ("method", "name", "message"),
    [
        ("sso", "carol", "Your account is not in a group that may use this hub."),
        ("sso-other-key", "erin", "The answer from Forged SSO could not be verified, so you were not logged in."),
        ("sso-expired", "erin", "The answer from Slow SSO has expired, so you were not logged in."),
        ("sso", "nameless", "Test SSO did not tell the hub your user name"),
    ],
    ids=["outside-the-allowed-groups", "token-signed-by-another-key", "expired-token", "no-user-name"],
)
def test_a_refused_login_says_why_and_makes_no_account(
    sso_hub: HubProcess, method: str, name: str, message: str
) -> None:
    http, back = provider_answer(sso_hub, method, name)
    response = http.get(back, timeout=30)
    assert response.status_code in (400, 403)
    assert message in alert(response)
    assert not logged_in(http, sso_hub)
    assert name not in users(sso_hub)


def test_the_account_stays_with_the_person_when_the_user_name_changes_hands(
    sso_hub: HubProcess, oidc_provider: OIDCProvider
) -> None:
    oidc_provider.add_user("sub-frank-1", username="frank")
    for _ in range(2):  # the first login makes the account, the second finds it
        http, back = provider_answer(sso_hub, "sso", "sub-frank-1")
        assert http.get(back, timeout=30).status_code == 200 and logged_in(http, sso_hub)
    with sqlite3.connect(sso_hub.config_path.parent / "data" / "hub.sqlite") as db:
        (subject,) = db.execute("SELECT auth_subject FROM users WHERE name = 'frank'").fetchone()
    assert subject == "sub-frank-1"

    # the provider gives the name frank to another person (a rename, a reused name)
    oidc_provider.add_user("sub-frank-2", username="frank")
    http, back = provider_answer(sso_hub, "sso", "sub-frank-2")
    response = http.get(back, timeout=30)
    assert response.status_code == 403
    assert "The account frank on this hub belongs to another person of your login provider." in alert(response)
    assert not logged_in(http, sso_hub)


def test_a_callback_with_another_state_is_an_old_tab(sso_hub: HubProcess) -> None:
    http, back = provider_answer(sso_hub, "sso", "dave")
    response = http.get(re.sub(r"state=[^&]+", "state=from-another-tab", back), timeout=30)
    assert response.status_code == 400
    assert "This login was started in another tab, or it is too old." in alert(response)
    assert not logged_in(http, sso_hub)
    assert "dave" not in users(sso_hub)


def test_pressing_cancel_at_the_provider_is_explained(sso_hub: HubProcess) -> None:
    http, back = provider_answer(sso_hub, "sso", "dave", cancel=True)
    response = http.get(back, timeout=30)
    assert response.status_code == 403
    assert "You did not allow this hub to use your Test SSO account" in alert(response)
    assert "dave" not in users(sso_hub)


def test_a_replayed_callback_does_not_log_in_a_second_browser(sso_hub: HubProcess) -> None:
    http, back = provider_answer(sso_hub, "sso", "bob")
    copied = http.cookies.get("hub-session")  # the session as it was before the callback, copied by an attacker
    assert http.get(back, timeout=30).status_code == 200 and logged_in(http, sso_hub)

    thief = requests.Session()
    thief.cookies.set("hub-session", copied)
    response = thief.get(back, timeout=30)
    assert response.status_code == 400
    assert "This login link was already used or has expired. Please start the login again." in alert(response)
    assert not logged_in(thief, sso_hub)


def test_a_provider_that_is_down_is_reported(sso_hub: HubProcess) -> None:
    http = requests.Session()
    response = http.get(f"{sso_hub.url}/hub/oauth_login", params={"method": "sso-down"}, timeout=30)
    assert response.status_code == 503
    assert "The login service Sleeping SSO cannot be reached right now." in alert(response)
