"""Awkward file names work in JupyterLab through the hub, and encoded paths lead nowhere else.

Alice creates, opens, renames and downloads files whose names hold %, #, ?, ;, spaces and
non-ASCII letters, through Traefik with her session, as JupyterLab does (each path segment
percent-encoded). Crafted encoded paths that try to climb from her prefix into bob's never reach
bob's server, and header names that alias a managed header never reach a user's server.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.client import HubUser
from tests.fixtures.hub import HubProcess, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

NAMES = ["100% done #1?;é ü.txt", "a;b?c#d%41 Ω.txt", "%2e%2e%2fnot a path.txt"]
FOLDER = "dir %23 #;? ñ"


def encoded(path: str) -> str:
    """What JupyterLab puts in the URL: each segment percent-encoded, slashes kept."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "alice")
    assert user.login(password_of("alice")).url.endswith("/hub/home")
    assert user.start("jupyterlab").get("ready") is True
    # Requests that change things carry the Origin a browser sends.
    user.http.headers["Origin"] = hub.url
    return user


@pytest.fixture(scope="module")
def bob(hub: HubProcess) -> HubUser:
    user = HubUser(hub.url, "bob")
    assert user.login(password_of("bob")).url.endswith("/hub/home")
    assert user.start("echo").get("ready") is True
    return user


def contents(user: HubUser, path: str) -> str:
    return f"{user.base_url}/user/{user.name}/api/contents/{encoded(path)}"


def put_text(user: HubUser, path: str, text: str) -> dict[str, object]:
    response = user.http.put(
        contents(user, path),
        json={"type": "file", "format": "text", "content": text},
        headers=user.origin_header,
        timeout=30,
    )
    assert response.status_code in (200, 201), (path, response.status_code, response.text[:300])
    return response.json()


@pytest.mark.parametrize("name", NAMES)
def test_create_open_rename_and_download_awkward_names(alice: HubUser, name: str) -> None:
    text = f"contents of {name}\n"
    created = put_text(alice, name, text)
    assert created["path"] == name and created["name"] == name

    opened = alice.http.get(contents(alice, name), params={"content": "1"}, timeout=30)
    assert opened.status_code == 200, opened.text[:300]
    assert opened.json()["path"] == name and opened.json()["content"] == text

    new_name = f"renamed {name}"
    renamed = alice.http.patch(contents(alice, name), json={"path": new_name}, headers=alice.origin_header, timeout=30)
    assert renamed.status_code == 200, renamed.text[:300]
    assert renamed.json()["path"] == new_name
    assert alice.http.get(contents(alice, name), timeout=30).status_code == 404

    download = alice.http.get(
        f"{alice.base_url}/user/alice/files/{encoded(new_name)}", params={"download": "1"}, timeout=30
    )
    assert download.status_code == 200, download.text[:300]
    assert download.content == text.encode()
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and unquote(disposition.split("''", 1)[1]) == new_name

    listing = alice.http.get(contents(alice, ""), timeout=30).json()
    assert new_name in [item["name"] for item in listing["content"]]
    assert alice.http.delete(contents(alice, new_name), headers=alice.origin_header, timeout=30).status_code == 204


def test_a_folder_with_an_awkward_name_holds_files(alice: HubUser) -> None:
    made = alice.http.put(contents(alice, FOLDER), json={"type": "directory"}, headers=alice.origin_header, timeout=30)
    assert made.status_code in (200, 201), made.text[:300]
    inner = f"{FOLDER}/{NAMES[0]}"
    put_text(alice, inner, "inside\n")
    listing = alice.http.get(contents(alice, FOLDER), timeout=30).json()
    assert [item["path"] for item in listing["content"]] == [inner]
    download = alice.http.get(f"{alice.base_url}/user/alice/files/{encoded(inner)}", timeout=30)
    assert download.content == b"inside\n"


def reached_bobs_server(body: str) -> bool:
    """The echo app answers with what it received, as JSON with the uid it runs as."""
    try:
        return isinstance(json.loads(body), dict) and "uid" in json.loads(body)
    except ValueError:
        return False


def test_bob_reaches_his_echo_server(bob: HubUser) -> None:
    status, body, _ = bob.raw_get("/user/bob/echo")
    assert status == 200 and reached_bobs_server(body)


@pytest.mark.parametrize(
    "path",
    [
        "/user/alice/..%2Fbob/echo",
        "/user/alice/..%2fbob/echo",
        "/user/alice%2F..%2Fbob/echo",
        "/user/alice/%2e%2e/bob/echo",
        "/user/alice/%2E%2E%2Fbob/echo",
        "/user/alice/%2e%2e%2f%2e%2e%2fuser/bob/echo",
        "/user/alice/%252e%252e/bob/echo",
        "/user/alice/%252e%252e%252fbob/echo",
        "/user/alice/..%5Cbob/echo",
        "/user/alice%5C..%5Cbob/echo",
        "/user/alice/..;/bob/echo",
        "/user/alice/..%3B/bob/echo",
        "/user/alice/x%00/../../bob/echo",
        "/user/alice/%3F/../../bob/echo",
        "/user/alice/%23/../../bob/echo",
        "/user/alice/api/contents/..%2F..%2F..%2Fbob/echo",
        "/user/bob/echo",
        "/user/bob%2Fecho",
    ],
)
def test_encoded_paths_from_alices_prefix_never_reach_bobs_server(alice: HubUser, bob: HubUser, path: str) -> None:
    origin = {"Origin": alice.base_url}
    for method in ("GET", "POST"):
        status, body, _ = raw_request(alice, method, path, origin)
        assert not reached_bobs_server(body), (method, path, status, body[:200])
        assert status in (302, 400, 403, 404, 405), (method, path, status, body[:200])


def raw_request(user: HubUser, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """Send the path byte for byte (no client-side normalisation), with the user's cookies."""
    parts = urlsplit(user.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)
    connection.request(method, path, body=b"" if method == "POST" else None, headers={"Cookie": cookie, **headers})
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    return response.status, body, dict(response.getheaders())


@pytest.mark.parametrize(
    "path",
    [
        "/user/alice/api/contents/..%2F..%2F..%2Fetc%2Fpasswd",
        "/user/alice/api/contents/a%2fb",
        "/user/alice/api/contents/..%5C..%5Cx",
        "/user/alice/api/contents/x%00.txt",
    ],
)
def test_the_proxy_refuses_encoded_slashes_backslashes_and_nuls(alice: HubUser, path: str) -> None:
    """JupyterLab never sends them; refused before any server reads them, there can be no split view."""
    status, body, _ = raw_request(alice, "GET", path, {})
    assert status == 400, (path, status, body[:200])


def test_header_names_that_alias_managed_headers_do_not_reach_the_server(bob: HubUser) -> None:
    """X_Forwarded_User reads as X-Forwarded-User to CGI/WSGI-style apps; Traefik drops such names."""
    forged = {
        "X_Forwarded_User": "alice",
        "X.Forwarded.For": "203.0.113.9",
        "Authorization_": "token forged",
        "Remote_User": "alice",
    }
    status, body, _ = bob.raw_get("/user/bob/echo", headers=forged)
    assert status == 200, body[:200]
    seen = {name.lower() for name in json.loads(body)["headers"]}
    assert not seen & {name.lower() for name in forged}, seen
