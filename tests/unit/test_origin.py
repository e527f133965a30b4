"""The origin rules forward-auth applies to cookie-authenticated requests for a user's server."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from hub.origin import CROSS_SITE, FOREIGN_ORIGIN, MISSING_ORIGIN, ForwardedRequest, refusal, same_origin

HUB = {"proto": "http", "host": "127.0.0.1:8000"}


def forwarded(method: str = "GET", **facts: object) -> ForwardedRequest:
    return ForwardedRequest(method=method, **{**HUB, **facts})  # type: ignore[arg-type]


def test_jupyterlab_saving_a_notebook_from_the_hub_itself_is_let_through() -> None:
    request = forwarded(
        "PUT", origin="http://127.0.0.1:8000", fetch_site="same-origin", fetch_mode="cors", fetch_dest="empty"
    )
    assert refusal(request, cookie_auth=True) is None


def test_a_post_from_another_port_of_the_same_host_is_refused() -> None:
    request = forwarded(
        "POST", origin="http://127.0.0.1:9999", fetch_site="same-site", fetch_mode="no-cors", fetch_dest="empty"
    )
    assert refusal(request, cookie_auth=True) == FOREIGN_ORIGIN


def test_a_post_from_a_sibling_subdomain_is_refused() -> None:
    request = ForwardedRequest(
        "POST", "https", "hub.example.org", origin="https://evil.example.org", fetch_site="same-site"
    )
    assert refusal(request, cookie_auth=True) == FOREIGN_ORIGIN


def test_a_page_of_the_same_host_over_plain_http_is_another_origin() -> None:
    request = ForwardedRequest("POST", "https", "hub.example.org", origin="http://hub.example.org")
    assert refusal(request, cookie_auth=True) == FOREIGN_ORIGIN


def test_a_websocket_opened_by_another_port_is_refused() -> None:
    request = forwarded(
        origin="http://127.0.0.1:9999",
        websocket=True,
        fetch_site="same-site",
        fetch_mode="websocket",
        fetch_dest="websocket",
    )
    assert refusal(request, cookie_auth=True) == FOREIGN_ORIGIN


def test_a_websocket_opened_by_jupyterlab_on_the_hub_is_let_through() -> None:
    request = forwarded(
        origin="http://127.0.0.1:8000",
        websocket=True,
        fetch_site="same-origin",
        fetch_mode="websocket",
        fetch_dest="websocket",
    )
    assert refusal(request, cookie_auth=True) is None


def test_a_websocket_without_origin_is_refused() -> None:
    assert refusal(forwarded(websocket=True), cookie_auth=True) == MISSING_ORIGIN


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_change_without_origin_is_refused(method: str) -> None:
    assert refusal(forwarded(method), cookie_auth=True) == MISSING_ORIGIN


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_plain_read_without_origin_or_fetch_metadata_is_let_through(method: str) -> None:
    assert refusal(forwarded(method), cookie_auth=True) is None


def test_origin_null_never_matches() -> None:
    assert refusal(forwarded("POST", origin="null"), cookie_auth=True) == FOREIGN_ORIGIN
    assert refusal(forwarded("GET", origin="null"), cookie_auth=True) == FOREIGN_ORIGIN


def test_a_foreign_origin_is_refused_even_on_a_get() -> None:
    assert refusal(forwarded("GET", origin="http://127.0.0.1:9999"), cookie_auth=True) == FOREIGN_ORIGIN


@pytest.mark.parametrize(
    ("origin", "proto", "host"),
    [
        ("HTTP://Hub.Example.ORG", "http", "hub.example.org"),
        ("http://hub.example.org:80", "http", "hub.example.org"),
        ("http://hub.example.org", "http", "hub.example.org:80"),
        ("https://hub.example.org:443", "https", "HUB.example.org"),
        ("https://hub.example.org", "HTTPS", "hub.example.org:443"),
        ("http://[::1]:8000", "http", "[::1]:8000"),
    ],
)
def test_origins_compare_case_insensitively_with_default_ports_filled_in(origin: str, proto: str, host: str) -> None:
    assert same_origin(origin, proto, host)


@pytest.mark.parametrize(
    ("origin", "proto", "host"),
    [
        ("http://hub.example.org:8080", "http", "hub.example.org"),
        ("https://hub.example.org", "http", "hub.example.org"),
        ("http://hub.example.org.evil.org", "http", "hub.example.org"),
        ("http://hub.example.org", "http", ""),
        ("http://hub.example.org", "", "hub.example.org"),
        ("http://hub.example.org", "http", "hub.example.org, evil.org"),
        ("http://user@hub.example.org", "http", "hub.example.org"),
        ("http://hub.example.org/path", "http", "hub.example.org"),
        ("http://hub.example.org:99999", "http", "hub.example.org:99999"),
        ("ftp://hub.example.org", "ftp", "hub.example.org"),
        ("", "http", "hub.example.org"),
    ],
)
def test_other_origins_and_unreadable_values_do_not_match(origin: str, proto: str, host: str) -> None:
    assert not same_origin(origin, proto, host)


def test_the_hub_reached_under_another_name_still_works() -> None:
    request = ForwardedRequest(
        "POST", "http", "laptop.local:8000", origin="http://laptop.local:8000", fetch_site="same-origin"
    )
    assert refusal(request, cookie_auth=True) is None


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
def test_a_link_from_another_site_opens_the_server_in_the_tab(site: str) -> None:
    request = forwarded(fetch_site=site, fetch_mode="navigate", fetch_dest="document")
    assert refusal(request, cookie_auth=True) is None


@pytest.mark.parametrize("site", ["same-origin", "none", "SAME-ORIGIN"])
def test_requests_of_the_hubs_own_pages_and_typed_addresses_are_let_through(site: str) -> None:
    assert refusal(forwarded(fetch_site=site, fetch_mode="no-cors", fetch_dest="image"), cookie_auth=True) is None


@pytest.mark.parametrize(
    ("mode", "dest"),
    [
        ("navigate", "iframe"),
        ("no-cors", "image"),
        ("no-cors", "script"),
        ("cors", "empty"),
        ("no-cors", "empty"),
    ],
)
def test_another_site_may_not_frame_embed_or_fetch_the_server(mode: str, dest: str) -> None:
    request = forwarded(fetch_site="same-site", fetch_mode=mode, fetch_dest=dest)
    assert refusal(request, cookie_auth=True) == CROSS_SITE


def test_a_navigation_from_another_site_that_posts_a_form_is_refused() -> None:
    request = forwarded(
        "POST", origin="http://127.0.0.1:9999", fetch_site="same-site", fetch_mode="navigate", fetch_dest="document"
    )
    assert refusal(request, cookie_auth=True) == FOREIGN_ORIGIN


def test_a_script_with_an_api_token_needs_no_origin() -> None:
    assert refusal(forwarded("POST"), cookie_auth=False) is None
    assert refusal(forwarded(websocket=True), cookie_auth=False) is None


def test_the_facts_are_read_from_the_headers_traefik_sends() -> None:
    headers = CIMultiDict(
        {
            "x-forwarded-method": "post",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "127.0.0.1:8000",
            "origin": "http://127.0.0.1:9999",
            "sec-fetch-site": "same-site",
            "Sec-Fetch-Mode": "no-cors",
            "Sec-Fetch-Dest": "empty",
        }
    )
    assert ForwardedRequest.from_headers(headers) == ForwardedRequest(
        "POST", "http", "127.0.0.1:8000", "http://127.0.0.1:9999", "same-site", "no-cors", "empty", False
    )


@pytest.mark.parametrize(
    "header",
    [
        {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},  # Traefik drops Upgrade and Connection, keeps these
        {"Sec-WebSocket-Version": "13"},
        {"Upgrade": "WebSocket"},
        {"Sec-Fetch-Mode": "websocket"},
    ],
)
def test_a_websocket_handshake_is_recognised_by_any_of_its_headers(header: dict[str, str]) -> None:
    assert ForwardedRequest.from_headers(CIMultiDict(header)).websocket
