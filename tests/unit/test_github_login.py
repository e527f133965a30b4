"""GitHub login against a small local stand-in for GitHub's OAuth and REST API (GitHub itself cannot be
reached from the test machines). The stand-in keeps GitHub's shapes: JSON token answers with
``error`` at status 200, 204/404 for organisation membership, team memberships with a state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from hub.auth import AccessPolicy, AuthUnavailable, LoginRefused
from hub.auth.github import GitHubAuthenticator
from hub.config import Settings
from tests.fixtures.traefik import free_port

IMAGES = [{"name": "lab", "image": "example/lab"}]
CALLBACK = "https://hub.example.org/hub/oauth_callback"
PEOPLE: dict[str, dict[str, Any]] = {
    "octocat": {"id": 583231, "orgs": ["Acme"], "teams": [("Acme", "staff")]},
    "monalisa": {"id": 4, "orgs": ["Acme", "art"], "teams": [("art", "painters")]},
    "stranger": {"id": 99, "orgs": [], "teams": []},
    # made organisations named like the hub's groups, and a team in one
    "mallory": {
        "id": 666,
        "orgs": ["acme", "hub-admins", "Staff"],
        "teams": [("hub-admins", "all"), ("acme", "staff")],
    },
}


@dataclass
class FakeGitHub:
    url: str
    codes: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    token_forms: list[dict[str, str]] = field(default_factory=list)

    def code_for(self, login: str) -> str:
        code = f"code-{len(self.codes)}-{login}"
        self.codes[code] = login
        return code


def github_app(fake: FakeGitHub) -> web.Application:
    routes = web.RouteTableDef()

    def who(request: web.Request) -> str:
        login = fake.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if login is None:
            raise web.HTTPUnauthorized(text='{"message": "Bad credentials"}', content_type="application/json")
        return login

    @routes.post("/login/oauth/access_token")
    async def access_token(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        fake.token_forms.append(form)
        if (form.get("client_id"), form.get("client_secret")) != ("gh-client", "gh-secret"):
            return web.json_response({"error": "incorrect_client_credentials"})
        login = fake.codes.pop(form.get("code", ""), None)
        if login is None:
            return web.json_response({"error": "bad_verification_code", "error_description": "The code is wrong"})
        token = f"gho_{login}_{len(fake.tokens)}"
        fake.tokens[token] = login
        return web.json_response({"access_token": token, "token_type": "bearer", "scope": "read:org"})

    @routes.get("/api/user")
    async def user(request: web.Request) -> web.Response:
        login = who(request)
        return web.json_response({"login": login, "id": PEOPLE[login]["id"], "name": login.title(), "email": None})

    @routes.get("/api/user/orgs")
    async def orgs(request: web.Request) -> web.Response:
        return web.json_response([{"login": org} for org in PEOPLE[who(request)]["orgs"]])

    @routes.get("/api/user/teams")
    async def teams(request: web.Request) -> web.Response:
        listed = [{"slug": slug, "organization": {"login": org}} for org, slug in PEOPLE[who(request)]["teams"]]
        return web.json_response(listed)

    @routes.get("/api/orgs/{org}/members/{login}")
    async def member(request: web.Request) -> web.Response:
        who(request)
        person = PEOPLE.get(request.match_info["login"], {"orgs": []})
        known = {org.lower() for org in person["orgs"]}
        return web.Response(status=204 if request.match_info["org"].lower() in known else 404)

    @routes.get("/api/orgs/{org}/teams/{team}/memberships/{login}")
    async def team_member(request: web.Request) -> web.Response:
        who(request)
        person = PEOPLE.get(request.match_info["login"], {"teams": []})
        wanted = (request.match_info["org"].lower(), request.match_info["team"])
        if wanted in {(org.lower(), slug) for org, slug in person["teams"]}:
            return web.json_response({"state": "active", "role": "member"})
        return web.json_response({"message": "Not Found"}, status=404)

    app = web.Application()
    app.add_routes(routes)
    return app


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    port = free_port()
    fake = FakeGitHub(f"http://127.0.0.1:{port}")
    runner = web.AppRunner(github_app(fake))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake
    await runner.cleanup()


Make = Callable[..., GitHubAuthenticator]


@pytest.fixture
async def make(fake_github: FakeGitHub) -> AsyncIterator[Make]:
    made: list[GitHubAuthenticator] = []

    def build(**options: Any) -> GitHubAuthenticator:
        entry = {
            "type": "github",
            "client_id": "gh-client",
            "client_secret": "gh-secret",
            "github_url": fake_github.url,
            "api_url": f"{fake_github.url}/api",
            "http_timeout": 3,
            **options,
        }
        settings = Settings(images=IMAGES, auth={"methods": [entry]})  # type: ignore[arg-type]
        backend = GitHubAuthenticator(settings.auth.methods[0], settings, None)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()


async def log_in(backend: GitHubAuthenticator, fake: FakeGitHub, login: str) -> Any:
    url, kept = await backend.begin(CALLBACK)
    assert parse_qs(urlsplit(url).query)["state"] == [kept["state"]]
    return await backend.complete({"code": fake.code_for(login), "state": kept["state"]}, kept, CALLBACK)


async def test_the_browser_goes_to_githubs_authorize_page_with_state_and_pkce(
    make: Make, fake_github: FakeGitHub
) -> None:
    url, kept = await make(allow_all=True).begin(CALLBACK)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_github.url}/login/oauth/authorize"
    assert query["client_id"] == ["gh-client"] and query["redirect_uri"] == [CALLBACK]
    assert query["scope"] == ["read:org"] and query["code_challenge_method"] == ["S256"]


async def test_a_member_of_an_allowed_organisation_logs_in_with_it_as_group(
    make: Make, fake_github: FakeGitHub
) -> None:
    backend = make(allowed_organizations=["ACME"])
    identity = await log_in(backend, fake_github, "octocat")
    assert identity.username == "octocat" and identity.groups == {"acme"}
    assert identity.subject == "583231"  # GitHub's numeric user id: it stays when a login is renamed
    assert identity.auth_state["access_token"].startswith("gho_octocat")
    assert fake_github.token_forms[-1]["code_verifier"]  # PKCE verifier sent with the code
    admitted = AccessPolicy(frozenset(), frozenset()).admit(identity, backend.method)
    assert admitted.username == "octocat" and not admitted.admin


async def test_a_team_can_be_the_allowed_group(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allowed_organizations=["art:painters", "acme:staff"])
    assert (await log_in(backend, fake_github, "monalisa")).groups == {"art:painters"}
    assert (await log_in(backend, fake_github, "octocat")).groups == {"acme:staff"}


async def test_someone_outside_the_organisations_is_refused_by_the_policy(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allowed_organizations=["acme"])
    identity = await log_in(backend, fake_github, "stranger")
    assert identity.groups == frozenset()
    with pytest.raises(LoginRefused) as caught:
        AccessPolicy(frozenset(), frozenset()).admit(identity, backend.method)
    assert "not in a group that may use this hub" in caught.value.user_message


async def test_admin_groups_read_all_organisations_and_teams(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allowed_organizations=["acme"], admin_groups=["Art:Painters"])
    identity = await log_in(backend, fake_github, "monalisa")
    assert identity.groups == {"acme", "art", "art:painters"}
    assert AccessPolicy(frozenset(), frozenset()).admit(identity, backend.method).admin


async def test_only_organisations_of_the_configuration_become_groups(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allowed_organizations=["acme"], admin_groups=["art:painters"], manage_groups=True)
    assert backend.startup_warnings() == []
    identity = await log_in(backend, fake_github, "mallory")
    assert identity.groups == {"acme", "acme:staff"}  # not hub-admins, hub-admins:all or staff
    assert not AccessPolicy(frozenset(), frozenset()).admit(identity, backend.method).admin
    assert (await log_in(backend, fake_github, "monalisa")).groups == {"acme", "art", "art:painters"}


async def test_managed_groups_need_organisations_named(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allow_all=True, manage_groups=True)
    assert "manage_groups makes no groups" in backend.startup_warnings()[0]
    assert (await log_in(backend, fake_github, "mallory")).groups == frozenset()


async def test_a_used_code_is_explained(make: Make, fake_github: FakeGitHub) -> None:
    backend = make(allow_all=True)
    url, kept = await backend.begin(CALLBACK)
    with pytest.raises(LoginRefused) as caught:
        await backend.complete({"code": "never-issued", "state": kept["state"]}, kept, CALLBACK)
    assert "already used or has expired" in caught.value.user_message


async def test_a_wrong_client_secret_is_the_administrators_problem(make: Make, fake_github: FakeGitHub) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        await log_in(make(allow_all=True, client_secret="wrong"), fake_github, "octocat")
    assert "tell the hub's administrator" in caught.value.user_message


async def test_github_out_of_reach_is_reported(make: Make) -> None:
    backend = make(allow_all=True, github_url=f"http://127.0.0.1:{free_port()}", display_name="GitHub")
    url, kept = await backend.begin(CALLBACK)
    with pytest.raises(AuthUnavailable) as caught:
        await backend.complete({"code": "c", "state": kept["state"]}, kept, CALLBACK)
    assert "The login service GitHub cannot be reached right now" in caught.value.user_message
