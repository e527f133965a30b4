"""The REST API against JupyterHub's own OpenAPI document (schemathesis), on a real hub behind real Traefik.

Every operation of the document that the hub implements gets generated requests (valid and invalid ones,
with an admin token); each answer must have a status code the document lists, a JSON body that matches its
schema, and no request may get a 500. The document is JupyterHub 6.1.1's, fetched from PyPI (see
jupyterhub_openapi.py); when it cannot be fetched the test fails.

Why a real hub: schemathesis sends its requests with `requests`, synchronously, and every answer must go through
the same Traefik and middlewares a JupyterHub tool meets. The one hub image here is the small echo server, so
the few starts the generated requests cause take a second each.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.handlers import setup_routes
from tests.contract.jupyterhub_openapi import (
    CORRECTIONS,
    JUPYTERHUB_VERSION,
    DocumentUnavailable,
    corrected,
    load_document,
    operations,
)
from tests.fixtures.hub import HubFactory, HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

# The operations of JupyterHub's document that the hub implements; each is tested below.
COVERED = [
    ("GET", "/"),
    ("GET", "/user"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{name}"),
    ("POST", "/users/{name}"),
    ("PATCH", "/users/{name}"),
    ("DELETE", "/users/{name}"),
    ("POST", "/users/{name}/server"),
    ("DELETE", "/users/{name}/server"),
    ("POST", "/users/{name}/servers/{server_name}"),
    ("DELETE", "/users/{name}/servers/{server_name}"),
    ("GET", "/users/{name}/tokens"),
    ("POST", "/users/{name}/tokens"),
    ("GET", "/users/{name}/tokens/{token_id}"),
    ("DELETE", "/users/{name}/tokens/{token_id}"),
    ("GET", "/users/{name}/shared"),
    ("GET", "/users/{name}/shared/{owner}/{server_name}"),
    ("DELETE", "/users/{name}/shared/{owner}/{server_name}"),
    ("GET", "/groups"),
    ("GET", "/groups/{name}"),
    ("POST", "/groups/{name}"),
    ("DELETE", "/groups/{name}"),
    ("POST", "/groups/{name}/users"),
    ("DELETE", "/groups/{name}/users"),
    ("GET", "/shares/{owner}"),
    ("GET", "/shares/{owner}/{server_name}"),
    ("POST", "/shares/{owner}/{server_name}"),
    ("PATCH", "/shares/{owner}/{server_name}"),
    ("DELETE", "/shares/{owner}/{server_name}"),
    ("GET", "/share-codes/{owner}/{server_name}"),
    ("POST", "/share-codes/{owner}/{server_name}"),
    ("DELETE", "/share-codes/{owner}/{server_name}"),
    ("GET", "/info"),
    ("POST", "/users/{name}/activity"),
    ("GET", "/users/{name}/servers/{server_name}"),
    ("PUT", "/users/{name}/servers/{server_name}"),
    ("PATCH", "/users/{name}/servers/{server_name}"),
    ("GET", "/groups/{name}/shared"),
    ("GET", "/groups/{name}/shared/{owner}/{server_name}"),
    ("DELETE", "/groups/{name}/shared/{owner}/{server_name}"),
    ("GET", "/share-codes/{owner}"),
    ("GET", "/services"),
    ("GET", "/services/{name}"),
]

# Covered operations no request can succeed with, and why (their answers are still checked against the document).
NEVER_SUCCEED = {
    ("GET", "/services/{name}"): "the hub runs no JupyterHub services, so every name is a 404 (as in JupyterHub)",
}

# Operations of the document the hub does not implement (yet), and why.
KNOWN_GAPS = {
    ("PUT", "/groups/{name}/properties"): "groups have no properties here (no place to keep them without a migration)",
    ("GET", "/proxy"): "Traefik's routes are the hub's own files, not a configurable proxy",
    ("POST", "/proxy"): "as above",
    ("PATCH", "/proxy"): "as above",
    ("POST", "/authorizations/token"): "deprecated in JupyterHub; log in on the hub instead",
    ("GET", "/authorizations/token/{token}"): "the hub checks tokens itself (forward auth)",
    ("GET", "/authorizations/cookie/{cookie_name}/{cookie_value}"): "removed from JupyterHub long ago",
    ("GET", "/oauth2/authorize"): "the hub is no OAuth provider: servers are guarded by forward auth",
    ("POST", "/oauth2/token"): "as above",
    ("POST", "/shutdown"): "the hub is stopped by its service manager (docker compose, systemd)",
}

# The hub's API routes that JupyterHub's document lacks, and why; they are not tested here.
NOT_IN_JUPYTERHUB = {
    ("GET", "/images"): "our images and their preparation state",
    ("GET", "/announcements"): "our announcements (JupyterHub has none in its API)",
    ("POST", "/announcements"): "as above",
    ("DELETE", "/announcements/{id}"): "as above",
    ("POST", "/groups"): "JupyterHub has it (several groups at once), but its document omits it",
    ("GET", "/users/{name}/server/progress"): "JupyterHub has it, but its document omits the event streams",
    ("GET", "/users/{name}/servers/{server_name}/progress"): "as above",
}

# Where the hub answers differently from JupyterHub on purpose (the document allows the answers; listed to be known).
DELIBERATE_DIFFERENCES = [
    "PATCH /users/{name} with a new name: 400, renaming users is not supported (the name is in volumes and routes).",
    "A path with an encoded / \\ ; % ? # or NUL: Traefik answers an empty 400 before the hub sees it (its defence "
    "against paths that proxy and backend read differently); no user, group or server name holds these characters.",
    "Starting a server without options starts the default image; JupyterHub would reuse the last start's options.",
    "Tokens have the one scope `inherit`; `scopes` and `roles` in POST /users/{name}/tokens are ignored.",
    "Servers keep no display names (a server is shown by its name): PUT or PATCH of a named server with another "
    "display_name is a 400, as is user_options there (options are chosen when the server starts).",
    "PATCH of the default server: 400, only named servers can be renamed (the default one owns the account's files).",
    "A user acting on another user's things gets 403 (JupyterHub answers 404 to a token whose scopes are filtered "
    "to other users); both are errors the document allows.",
    "POST /users/{name}/activity: a time in the future (up to an hour ahead, as JupyterHub allows) counts as now.",
]

# Generated requests per operation (valid and invalid); starting servers costs seconds, so those get fewer.
EXAMPLES = 20
FEWER_EXAMPLES = {
    ("POST", "/users/{name}/server"): 10,
    ("POST", "/users/{name}/servers/{server_name}"): 10,
    ("DELETE", "/users/{name}/servers/{server_name}"): 10,
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    try:
        return load_document()
    except DocumentUnavailable as exc:
        pytest.fail(f"JupyterHub {JUPYTERHUB_VERSION}'s OpenAPI document could not be fetched from PyPI: {exc}")


@pytest.fixture(scope="module")
def schema(document: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(corrected(document))


@pytest.fixture(scope="module")
def contract_hub(hub_factory: HubFactory, test_images: list[dict[str, Any]]) -> HubProcess:
    """A hub with only the small echo image (fast starts), admins who may act for others (tokens), sharing on."""
    return hub_factory(
        auth={"type": "native", "admin_users": ["admin"], "admin_access": True},
        images=[image for image in test_images if image["name"] == "echo"],
        sharing={"enabled": True},
    )


@dataclass
class Api:
    """The admin's calls, used to make the throw-away users, groups, tokens and shares the requests act on."""

    base: str
    token: str
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.headers["Authorization"] = f"token {self.token}"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        data = json.dumps(body) if body is not None else None
        response = self.http.request(method, self.base + path, data=data, timeout=60)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response


@pytest.fixture(scope="module")
def admin(contract_hub: HubProcess) -> Api:
    made = contract_hub.cli("token", "create", "admin", "--service", "--admin", "--note", "contract test")
    assert made.returncode == 0, made.stderr
    api = Api(f"{contract_hub.url}/hub/api", made.stdout.strip())
    api.call("POST", "/users/admin/server", {})  # shares need a server of the admin's
    api.call("POST", "/users/admin/servers/work", {})
    return api


def our_operations() -> set[tuple[str, str]]:
    """The hub's API routes, written as the document's paths (the default server is the empty server name)."""
    app = web.Application()
    setup_routes(app)
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or not path.startswith("/hub/api"):
            continue
        path = path.removeprefix("/hub/api") or "/"
        path = re.sub(r"^/(shares|share-codes)/\{user\}", r"/\1/{owner}", path)
        path = path.replace("{server}", "{server_name}")
        if path != "/" and path.endswith("/"):
            path += "{server_name}"  # /shares/alice/ is the default server's (an empty name)
        found.add((route.method, path))
    return found


def test_every_operation_is_accounted_for(document: dict[str, Any]) -> None:
    """Each operation of the document is tested or a known gap; each API route of ours is tested or our own."""
    documented = operations(document)
    assert not set(COVERED) - documented, "tested, but not in JupyterHub's document"
    assert documented - set(COVERED) == set(KNOWN_GAPS), "the document's operations: neither tested nor known gaps"
    ours = our_operations()
    assert ours - set(COVERED) == set(NOT_IN_JUPYTERHUB), (
        "a new API route: add it to COVERED (JupyterHub has it) or NOT_IN_JUPYTERHUB (with the reason)"
    )
    assert set(COVERED) <= ours, "tested, but the hub has no such route"
    print("Corrections of JupyterHub's document:\n- " + "\n- ".join(CORRECTIONS))
    print("Deliberate differences:\n- " + "\n- ".join(DELIBERATE_DIFFERENCES))


@dataclass
class World:
    """Throw-away things one operation's requests act on; path parameters are drawn from these."""

    users: list[str]
    groups: list[str]
    token_ids: list[str]


# Operations whose world has a named server "work" of each user, made with PUT and not started.
MADE_NOT_STARTED = {
    ("GET", "/users/{name}/servers/{server_name}"),
    ("PATCH", "/users/{name}/servers/{server_name}"),
    ("POST", "/users/{name}/activity"),
}


def make_world(admin: Api, tag: str, method: str, path: str) -> World:
    users = [f"ct-{tag}-a", f"ct-{tag}-b"]
    group = f"ctg-{tag}"
    admin.call("POST", "/users", {"usernames": users})
    admin.call("POST", f"/groups/{group}", {"users": users[:1]})
    token = admin.call("POST", f"/users/{users[0]}/tokens", {"note": "contract"}).json()
    admin.call("POST", "/shares/admin/", {"user": users[0]})
    admin.call("POST", "/shares/admin/work", {"group": group})
    admin.call("POST", "/share-codes/admin/", {"expires_in": 3600})
    if (method, path) == ("DELETE", "/users/{name}/servers/{server_name}"):
        admin.call("POST", f"/users/{users[0]}/servers/work", {})  # something to stop and remove
    if (method, path) in MADE_NOT_STARTED:
        for user in users:
            admin.call("PUT", f"/users/{user}/servers/work")  # made, not started: to read, rename, report on
    return World(users, [group], [token["id"]])


def body_choices(method: str, path: str, world: World) -> list[Any]:
    """Request bodies that can succeed, where generated ones hardly can (names of things that exist)."""
    user, other = world.users
    return {
        ("POST", "/users"): [{"usernames": [f"{user}-new{n}"], "admin": False} for n in range(3)],
        ("POST", "/groups/{name}/users"): [{"users": [other]}],
        ("DELETE", "/groups/{name}/users"): [{"users": [user]}],
        ("POST", "/shares/{owner}/{server_name}"): [{"user": other}, {"group": world.groups[0]}],
        ("PATCH", "/shares/{owner}/{server_name}"): [{"user": user}, {"group": world.groups[0]}],
        ("POST", "/users/{name}/tokens"): [{"note": "n", "expires_in": 0}, {"expires_in": 60}],
        ("PUT", "/users/{name}/servers/{server_name}"): [{}, {"user_options": None}],
        ("PATCH", "/users/{name}/servers/{server_name}"): [{"display_name": "work"}, {"name": "moved"}],
        ("POST", "/users/{name}/activity"): [
            {"last_activity": "2026-01-02T03:04:05Z"},
            {"servers": {"work": {"last_activity": "2026-01-02T03:04:05+01:00"}}},
        ],
    }.get((method, path), [])


def path_choices(path: str, world: World) -> list[dict[str, str]]:
    """Path parameters naming things that exist (the generated ones mostly name nothing: 404s)."""
    names = world.groups if path.startswith("/groups") else world.users
    choices = [{"name": name} for name in names]
    if "{owner}" in path:
        choices = [{**choice, "owner": "admin"} for choice in choices or [{}]]
    if "{server_name}" in path:
        choices = [{**choice, "server_name": server} for choice in choices for server in ("", "work")]
    if "{token_id}" in path:
        choices = [{**choice, "token_id": token} for choice in choices for token in world.token_ids]
    kept = [{key: value for key, value in choice.items() if "{" + key + "}" in path} for choice in choices]
    return [dict(pairs) for pairs in dict.fromkeys(tuple(sorted(choice.items())) for choice in kept)]


def strategy(operation: Any, choices: list[dict[str, str]], bodies: list[Any]) -> st.SearchStrategy[Any]:
    """Generated requests, valid and invalid, some with path parameters and bodies naming things that exist."""
    options = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        options.append(operation.as_strategy(mode))
        if choices:
            options.append(
                st.sampled_from(choices).flatmap(lambda fixed, m=mode: operation.as_strategy(m, path_parameters=fixed))
            )
    if bodies:
        options.append(
            st.tuples(st.sampled_from(choices or [{}]), st.sampled_from(bodies)).flatmap(
                lambda pair: operation.as_strategy(path_parameters=pair[0], body=pair[1])
            )
        )
    return st.one_of(options)


# Traefik refuses a path holding these encoded characters with an empty 400 before the hub sees it (its defence
# against paths read differently by proxy and backend). No user, group or server name can hold them.
TRAEFIK_REFUSES = re.compile(r"%(2F|5C|00|3B|25|3F|23)", re.IGNORECASE)


def refused_by_traefik(response: requests.Response) -> bool:
    path = (response.request.path_url or "").partition("?")[0]
    return response.status_code == 400 and not response.content and bool(TRAEFIK_REFUSES.search(path))


@dataclass
class Outcome:
    failures: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    refused_by_traefik: int = 0
    samples: dict[str, str] = field(default_factory=dict)


def check(case: Any, outcome: Outcome, base_url: str, session: requests.Session) -> None:
    """Send one request; the answer's failures of the document's contract go into ``outcome``."""
    try:
        response = case.call(base_url=base_url, session=session, headers=dict(session.headers), timeout=60)
        if refused_by_traefik(response):
            outcome.refused_by_traefik += 1
            return
        outcome.statuses[response.status_code] += 1
        if response.status_code >= 400:
            message = response.text[:150]
            sample = f"{case.method} {case.path_parameters} {case.body!r:.80} -> {message}"
            outcome.samples.setdefault(re.sub(r"\d+", "N", message)[:60], sample)
        case.validate_response(response, checks=CHECKS, headers=dict(session.headers))
    except BaseExceptionGroup as group:  # schemathesis' failed checks, with its report as the message
        kinds = sorted({str(getattr(failure, "title", type(failure).__name__)) for failure in group.exceptions})
        outcome.failures.setdefault(" / ".join(kinds), str(group)[:3000])
    except Exception as exc:  # a request that could not be made: every failure is reported together
        text = "".join(traceback.format_exception_only(exc)).strip()
        outcome.failures.setdefault(re.sub(r"\d+", "N", text.splitlines()[0])[:200], text[:3000])


def run_operation(
    operation: Any, base_url: str, token: str, choices: list[dict[str, str]], bodies: list[Any], examples: int
) -> Outcome:
    """First each existing thing with each body that can succeed, then ``examples`` generated requests."""
    outcome = Outcome()
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    for fixed in choices or [{}]:
        for body in bodies or [NOT_SET]:
            check(operation.Case(path_parameters=fixed, body=body), outcome, base_url, session)

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy(operation, choices, bodies))
    def run(case: Any) -> None:
        check(case, outcome, base_url, session)

    run()
    return outcome


@pytest.mark.parametrize(("method", "path"), COVERED, ids=[f"{method} {path}" for method, path in COVERED])
def test_operation_follows_jupyterhubs_document(
    method: str, path: str, schema: Any, admin: Api, contract_hub: HubProcess
) -> None:
    tag = f"{COVERED.index((method, path)):02d}"
    world = make_world(admin, tag, method, path)
    operation = schema[path][method]
    base_url = f"{contract_hub.url}/hub/api"
    outcome = run_operation(
        operation,
        base_url,
        admin.token,
        path_choices(path, world),
        body_choices(method, path, world),
        FEWER_EXAMPLES.get((method, path), EXAMPLES),
    )
    answers = dict(sorted(outcome.statuses.items()))
    print(f"{method} {path}: answers {answers}, {outcome.refused_by_traefik} refused by Traefik")
    print("\n".join(outcome.samples.values()))
    assert not outcome.failures, f"{method} {path} does not follow JupyterHub's document:\n\n" + "\n\n".join(
        outcome.failures.values()
    )
    if (method, path) in NEVER_SUCCEED:
        assert not any(200 <= status < 300 for status in outcome.statuses), "a request succeeded"
    else:
        assert any(200 <= status < 300 for status in outcome.statuses), "no generated request succeeded"


def test_details_of_jupyterhubs_dialect_the_document_leaves_open(admin: Api) -> None:
    """Mismatches found by the contract test whose answer the error codes the document allows would hide."""
    admin.call("POST", "/users", {"usernames": ["ct-dialect"]})
    forever = admin.call("POST", "/users/ct-dialect/tokens", {"expires_in": 0}).json()  # JupyterHub: 0 is no expiry
    assert forever["expires_at"] is None and forever["token"]
    # JupyterHub 6's ServerRequest: the options sit under "user_options" (the image named there is the one used)
    body = {"user_options": {"image": "no-such-image"}, "display_name": "Mine"}
    refused = admin.http.post(f"{admin.base}/users/ct-dialect/server", json=body, timeout=60)
    assert refused.status_code == 400 and "no-such-image" in refused.json()["message"]
    # JupyterHub answers 404 for the shares of a user who does not exist (not an empty list)
    for path in ("/shares/ct-nobody", "/users/ct-nobody/shared"):
        assert admin.http.get(admin.base + path, timeout=60).status_code == 404, path
    # activity a server reports (jupyterhub-singleuser's body) shows in its model; an older report changes nothing
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    admin.call("POST", "/users/admin/activity", {"servers": {"work": {"last_activity": moment}}})
    admin.call("POST", "/users/admin/activity", {"servers": {"work": {"last_activity": "2020-01-01T00:00:00Z"}}})
    assert admin.call("GET", "/users/admin/servers/work").json()["last_activity"] == moment
