"""Redirect targets, the persistent cookie key, login throttling, and forward-auth path checks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hub.handlers.forward_auth import cookies_without_session, is_under, normalized_path
from hub.security import load_or_create_secret, safe_next_url


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/hub/spawn", "/hub/spawn"),
        ("/user/alice/lab?x=1", "/user/alice/lab?x=1"),
        ("https://evil.example/", "/hub/home"),
        ("//evil.example/", "/hub/home"),
        ("/\\evil.example", "/hub/home"),
        ("javascript:alert(1)", "/hub/home"),
        ("hub/home", "/hub/home"),
        ("/x\r\nSet-Cookie: a=b", "/hub/home"),
        ("", "/hub/home"),
        (None, "/hub/home"),
    ],
)
def test_next_only_leads_to_this_hub(value: str | None, expected: str) -> None:
    assert safe_next_url(value, "/hub/home") == expected


def test_the_cookie_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "cookie_secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first


@pytest.mark.parametrize(
    "uri, owner, allowed",
    [
        ("/user/alice/lab", "alice", True),
        ("/user/alice/", "alice", True),
        ("/user/alice", "alice", True),
        ("/user/alice/../bob/", "alice", False),
        ("/user/alice/%2e%2e/bob/", "alice", False),
        ("/user/alice/%252e%252e/bob/", "alice", False),
        ("/user/alice/..%2Fbob/", "alice", False),
        ("//user/alice/x", "alice", True),
        ("/user/alicex/", "alice", False),
        ("/user/alice\\..\\bob/", "alice", False),
        ("/user/bob/../alice/api", "alice", True),
    ],
)
def test_forwarded_paths_are_normalised_before_the_owner_check(uri: str, owner: str, allowed: bool) -> None:
    assert is_under(normalized_path(uri), owner) is allowed


def test_the_hub_session_cookie_is_removed_before_the_users_server() -> None:
    header = "_xsrf=abc; hub-session=SECRET; theme=dark"
    assert cookies_without_session(header) == "_xsrf=abc; theme=dark"
    assert cookies_without_session("hub-session=SECRET") == ""


def test_an_empty_token_does_not_skip_the_csrf_check() -> None:
    from aiohttp.test_utils import make_mocked_request

    from hub.security import is_token_request

    def request(header: str):  # type: ignore[no-untyped-def]
        return make_mocked_request("POST", "/hub/api/users", headers={"Authorization": header})

    assert is_token_request(request("token abc"))
    assert is_token_request(request("Bearer abc"))
    assert not is_token_request(request("token "))
    assert not is_token_request(request("token"))
    assert not is_token_request(request("Basic abc"))
