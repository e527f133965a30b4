"""Forward auth skips the hub's page middlewares: its answers carry no session cookie, and the pages keep theirs."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from hub.handlers.forward_auth import ROUTE_NAMES
from hub.keys import SERVERS
from hub.security import SESSION_COOKIE
from tests.inprocess.conftest import TokenMaker


def forwarded(uri: str, **headers: str) -> dict[str, str]:
    return {
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "hub.example.org",
        **headers,
    }


async def test_forward_auth_answers_set_no_session_cookie(app_client: TestClient, tokens_of: TokenMaker) -> None:
    """Traefik passes every header of a refusal on to the browser: a fresh session cookie made by the page
    middlewares (and encrypted on every request) would land there. Allowed answers carry none either."""
    alice = await tokens_of("alice")
    started = await app_client.post(
        "/hub/api/users/alice/server", json={"image": "lab"}, headers={"Authorization": f"token {alice}"}
    )
    assert started.status == 201
    secret = app_client.server.app[SERVERS].route_secret("alice")
    app_client.session.cookie_jar.clear()
    answers = {
        "allowed": await app_client.get(
            "/hub/forward-auth/alice", headers=forwarded("/user/alice/api/status", Authorization=f"token {alice}")
        ),
        "login": await app_client.get(
            "/hub/forward-auth/alice", headers=forwarded("/user/alice/lab"), allow_redirects=False
        ),
        "no token": await app_client.get(
            "/hub/forward-auth-ws/alice", headers=forwarded("/user/alice/api/kernels", Authorization="token nope")
        ),
        "another's": await app_client.get(
            "/hub/forward-auth/bob", headers=forwarded("/user/bob/api/status", Authorization=f"token {alice}")
        ),
    }
    statuses = {name: response.status for name, response in answers.items()}
    assert statuses == {"allowed": 200, "login": 302, "no token": 401, "another's": 403}
    assert answers["allowed"].headers["Authorization"] == f"token {secret}"
    for name, response in answers.items():
        assert "Set-Cookie" not in response.headers, name
    assert not app_client.session.cookie_jar.filter_cookies(app_client.make_url("/")).get(SESSION_COOKIE)


async def test_hub_pages_still_run_the_middlewares(app_client: TestClient) -> None:
    """The login page still gets a session (its CSRF token), and a form posted without it is still refused."""
    page = await app_client.get("/hub/login")
    assert page.status == 200 and SESSION_COOKIE in page.cookies
    app_client.session.cookie_jar.clear()
    refused = await app_client.post("/hub/login", data={"username": "alice", "password": "x"})
    assert refused.status == 403
    assert "This form has expired" in await refused.text()


def test_every_forward_auth_route_skips_the_page_middlewares(app_client: TestClient) -> None:
    routes = {
        route.name: route.resource.canonical
        for route in app_client.server.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(("/hub/forward-auth", "/hub/traefik-fast-lane"))
    }
    assert set(routes) == ROUTE_NAMES, routes
