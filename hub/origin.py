"""Which browser requests to a user's server may ride on the hub's session cookie.

Traefik adds the server's token to every request it lets through, so Jupyter Server believes each
one is token-authenticated and skips its own XSRF and Origin checks. Cookies are sent by any page
of the same *site* (another port of the host, a sibling subdomain), so forward-auth does those
checks instead, from the facts Traefik passes on: by default it copies every header of the
original request except the hop-by-hop ones (``Connection`` and ``Upgrade`` are dropped, the
``Sec-WebSocket-*`` headers stay) and sets ``X-Forwarded-Method``, ``-Proto`` and ``-Host`` (the
``Host`` header as the browser sent it, port included) itself, replacing what a client sent.

The rules apply only when the session cookie authenticated the request. A token in an
``Authorization`` header cannot be attached by a page of another origin (that needs a CORS
preflight, which carries no credentials and so never gets past forward-auth), and scripts that use
tokens send no ``Origin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from hub.i18n import N_

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}

FOREIGN_ORIGIN = N_("Refused: this request came from a page of another site, not from this hub.")
MISSING_ORIGIN = N_("Refused: a change or a WebSocket needs the Origin header a browser sends.")
CROSS_SITE = N_("Refused: another site may only link to this server, not load it or send to it.")


@dataclass(frozen=True)
class ForwardedRequest:
    """The facts about the original request that the origin rules look at."""

    method: str
    proto: str
    host: str
    origin: str | None = None
    fetch_site: str | None = None
    fetch_mode: str | None = None
    fetch_dest: str | None = None
    websocket: bool = False

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> ForwardedRequest:
        """Read from the headers Traefik sends to forward-auth (keys case-insensitive, as aiohttp's)."""
        upgrade = headers.get("Upgrade", "").lower() == "websocket"
        handshake = "Sec-WebSocket-Key" in headers or "Sec-WebSocket-Version" in headers
        return cls(
            method=headers.get("X-Forwarded-Method", "GET").upper(),
            proto=headers.get("X-Forwarded-Proto", ""),
            host=headers.get("X-Forwarded-Host", ""),
            origin=headers.get("Origin"),
            fetch_site=headers.get("Sec-Fetch-Site"),
            fetch_mode=headers.get("Sec-Fetch-Mode"),
            fetch_dest=headers.get("Sec-Fetch-Dest"),
            websocket=upgrade or handshake or headers.get("Sec-Fetch-Mode", "").lower() == "websocket",
        )


def origin_key(url: str) -> tuple[str, str, int] | None:
    """Scheme, lower-case host and port (default filled in) of an origin, or None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def same_origin(origin: str, proto: str, host: str) -> bool:
    """Whether ``origin`` is ``<proto>://<host>``, the address the browser sent the request to."""
    if not host or "," in host or "/" in host:
        return False
    mine = origin_key(f"{proto.strip().lower()}://{host.strip()}")
    theirs = origin_key(origin)
    return mine is not None and theirs is not None and mine == theirs


def is_top_level_navigation(request: ForwardedRequest) -> bool:
    """A link followed or an address typed: the page replaces the whole tab."""
    return (
        request.method in ("GET", "HEAD")
        and not request.websocket
        and (request.fetch_mode or "").lower() == "navigate"
        and (request.fetch_dest or "").lower() == "document"
    )


def refusal(request: ForwardedRequest, *, cookie_auth: bool) -> str | None:
    """None if the request may go on, else the reason, in plain words, to refuse it."""
    if not cookie_auth:
        return None
    if request.origin is not None and not same_origin(request.origin, request.proto, request.host):
        return FOREIGN_ORIGIN
    if request.origin is None and (request.method not in SAFE_METHODS or request.websocket):
        return MISSING_ORIGIN
    site = request.fetch_site.strip().lower() if request.fetch_site is not None else None
    if site is not None and site not in TRUSTED_FETCH_SITES and not is_top_level_navigation(request):
        return CROSS_SITE
    return None


__all__ = ["ForwardedRequest", "origin_key", "refusal", "same_origin"]
