"""The endpoint Traefik asks before it forwards a request to a user's server.

It answers from memory alone (the session cookie or an API token): no database, no I/O. An allowed
request gets the server's secret token in the answer, which Traefik puts on the request. The owner, and for a
named server its name, are part of the address (each route has its own middleware), and the forwarded path
must lie under that server's prefix once decoded and normalised, so ``/user/alice/../bob/`` never counts as
alice's, and the token handed out is always that of the server the route leads to.

Someone the server is shared with (hub/sharing.py) passes for plain HTTP; their WebSockets are routed to
the hub's relay (hub/share_relay.py), whose middleware gets a signed ticket instead of the token.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from hub.config import AuthSection
from hub.handlers.api_auth import bearer_token
from hub.i18n import N_, gettext_for
from hub.keys import ACCOUNTS, ACTIVITY, METRICS, SERVERS, SESSION_READER, SETTINGS, SHARE_TICKETS, SHARING, TOKENS
from hub.names import truncate
from hub.origin import ForwardedRequest, refusal
from hub.request_view import RequestView
from hub.security import SESSION_COOKIE, SessionUser, session_user
from hub.share_relay import SHARE_TICKET_HEADER, Ticket

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
ROUTE_NAMES = frozenset(
    {
        "forward_auth",
        "forward_auth_named",
        "forward_auth_ws",
        "forward_auth_ws_named",
        "forward_auth_share",
        "forward_auth_share_named",
        "traefik_fast_lane",  # hub/handlers/fast_lane.py: polled by Traefik many times a second
    }
)


def normalized_path(uri: str) -> str:
    """The path of a forwarded URI, percent-decoded until stable and with dot segments resolved."""
    path = uri.split("?", 1)[0].split("#", 1)[0]
    for _ in range(4):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    normal = posixpath.normpath("/" + path.replace("\\", "/").lstrip("/"))
    return normal + "/" if path.endswith("/") and normal != "/" else normal


def is_under(path: str, owner: str, server: str = "") -> bool:
    prefix = f"/user/{owner}/" + (f"{server}/" if server else "")
    return path.startswith(prefix) or path == prefix.rstrip("/")


def cookies_without_session(header: str) -> str:
    """The request's Cookie header minus the hub's session cookie, for the user's server."""
    kept = []
    for part in header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name != SESSION_COOKIE:
            kept.append(part.strip())
    return "; ".join(kept)


async def token_user(app: web.Application, request: RequestView) -> SessionUser | None:
    """The owner of an API token sent as `Authorization: token ...` (checked in memory)."""
    token = bearer_token(request)
    owner = await app[TOKENS].check(token) if token else None
    return SessionUser(owner.username, owner.admin) if owner else None


def may_open(auth: AuthSection, user: SessionUser, owner: str) -> bool:
    """The owner; admins only with ``auth.admin_access``; accounts named in ``auth.server_access_accounts``."""
    return user.name == owner or (user.admin and auth.admin_access) or user.name in auth.server_access_accounts


def login_location(app: web.Application, request: RequestView, uri: str, route: str = "login") -> str:
    """Absolute, because Traefik resolves a relative Location against the hub's internal address.

    Traefik sets X-Forwarded-Proto and -Host itself (trustForwardHeader is off).
    """
    proto = request.headers.get("X-Forwarded-Proto", "http")
    host = request.headers.get("X-Forwarded-Host", "")
    login = app.router[route].url_for().with_query(next=uri if uri.startswith("/") else "/")
    return f"{proto}://{host}{login}" if host and proto in ("http", "https") else str(login)


def passed_by(middleware: Middleware) -> Middleware:
    """The middleware, except for forward auth's own routes, which skip it.

    Forward auth runs before every request to every user's server, renders no page and reads the session
    through its own cache (hub/session_reader.py). The hub's middlewares are for its pages: aiohttp-session
    would decrypt the cookie again, and the template context would make (and encrypt into a new cookie) a
    CSRF token for every request without a session. Its refusals are plain text that the error middleware
    passed through unchanged anyway; an unexpected error now gets aiohttp's plain 500 instead of a page.
    """

    @web.middleware
    async def skipping(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route.name in ROUTE_NAMES:
            return await handler(request)
        return await middleware(request, handler)

    return skipping


Mode = Literal["any", "owner", "share"]
"""What a route's middleware asks (hub/traefik.py): ``any`` for plain HTTP (the owner or someone the server is
shared with), ``owner`` for WebSockets straight to the server (never a share: Traefik could not close them on
revocation), ``share`` for WebSockets relayed by the hub (answered with a signed ticket, not the token)."""
MODE_OF_PATH: dict[str, Mode] = {"forward-auth": "any", "forward-auth-ws": "owner", "forward-auth-share": "share"}
"""The mode of each forward-auth address, by its second path segment: ``/hub/<this>/<owner>[/<server>]``."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One forward-auth question, whether it came through aiohttp or the lean listener."""

    owner: str
    server: str
    mode: Mode
    headers: Mapping[str, str]
    """Case-insensitive, as aiohttp's."""
    cookies: Mapping[str, str]

    @classmethod
    def of(cls, request: web.Request, mode: Mode) -> Ask:
        info = request.match_info
        return cls(info["owner"], info.get("server", ""), mode, request.headers, request.cookies)


@routes.get("/hub/forward-auth/{owner}", name="forward_auth")
@routes.get("/hub/forward-auth/{owner}/{server}", name="forward_auth_named")
async def forward_auth(request: web.Request) -> web.StreamResponse:
    return await decide(request.app, Ask.of(request, "any"))


@routes.get("/hub/forward-auth-ws/{owner}", name="forward_auth_ws")
@routes.get("/hub/forward-auth-ws/{owner}/{server}", name="forward_auth_ws_named")
async def forward_auth_websocket(request: web.Request) -> web.StreamResponse:
    return await decide(request.app, Ask.of(request, "owner"))


@routes.get("/hub/forward-auth-share/{owner}", name="forward_auth_share")
@routes.get("/hub/forward-auth-share/{owner}/{server}", name="forward_auth_share_named")
async def forward_auth_shared_websocket(request: web.Request) -> web.StreamResponse:
    return await decide(request.app, Ask.of(request, "share"))


async def decide(app: web.Application, request: Ask) -> web.Response:
    """The answer, or raises the refusal (an aiohttp HTTP exception, which is a response too)."""
    answer = decide_now(app, request)
    if answer is not None:
        return answer
    # No session, and a token the hub did not know: made elsewhere a moment ago?
    return verdict(app, request, None, await token_user(app, request))


def decide_now(app: web.Application, request: Ask) -> web.Response | None:
    """``decide`` without waiting, or None when the answer needs a look in the database first (a token the hub
    does not know). The lean listener answers in the same call that read the question."""
    session = session_user(app[SESSION_READER].read(request), app[ACCOUNTS])
    token = bearer_token(request) if session is None and request.mode != "share" else None
    if token is None:
        return verdict(app, request, session, None)
    tokens = app[TOKENS]
    if not tokens.knows(token):
        return None
    owner = tokens.check_known(token)
    return verdict(app, request, None, SessionUser(owner.username, owner.admin) if owner else None)


def verdict(
    app: web.Application, request: Ask, session: SessionUser | None, token_owner: SessionUser | None
) -> web.Response:
    """The answer once the caller is known: by the session cookie, else by an API token (never for ``share``)."""
    owner, server, mode = request.owner, request.server, request.mode
    uri = request.headers.get("X-Forwarded-Uri", "/")
    path = normalized_path(uri)
    user = session or (token_owner if mode != "share" else None)
    metrics = app[METRICS].forward_auth

    def translate(message: str) -> str:  # Traefik passes on the browser's Accept-Language and cookies
        return gettext_for(request)(message)

    if user is None:
        metrics.labels("login").inc()
        if bearer_token(request) is None and request.headers.get("X-Forwarded-Method", "GET") in ("GET", "HEAD"):
            raise web.HTTPFound(login_location(app, request, uri))
        raise web.HTTPUnauthorized(text=translate(N_("Log in to the hub first, or send a valid token.")) + "\n")
    account = app[ACCOUNTS].get(user.name)
    if session is not None and account is not None and account.password_must_change:
        metrics.labels("login").inc()  # an admin reset the password: the temporary one opens nothing but the hub
        if request.headers.get("X-Forwarded-Method", "GET") in ("GET", "HEAD"):
            raise web.HTTPFound(login_location(app, request, uri, "change_password"))
        raise web.HTTPForbidden(text=translate(N_("Choose a new password on the hub first.")) + "\n")
    facts = ForwardedRequest.from_headers(request.headers)
    allowed = may_open(app[SETTINGS].auth, user, owner)
    if not allowed and mode != "owner":
        allowed = app[SHARING].may_use(user.name, owner, server)
        if allowed and mode == "any" and facts.websocket:  # a handshake the WebSocket routers did not catch
            metrics.labels("refused").inc()
            raise web.HTTPForbidden(
                text=translate(N_("Open a server shared with you from the hub's home page.")) + "\n"
            )
    if not allowed or not is_under(path, owner, server):
        metrics.labels("refused").inc()
        log.info("forward-auth refused %s for %s", user.name, truncate(uri, 80))
        raise web.HTTPForbidden(text=translate(N_("This server belongs to another user.")) + "\n")
    reason = refusal(facts, cookie_auth=session is not None)
    if reason is not None:
        metrics.labels("refused").inc()
        log.info(
            "forward-auth refused %s %s for %s from origin %s (Sec-Fetch-Site %s): %s",
            truncate(facts.method, 10),
            truncate(uri, 80),
            user.name,
            truncate(facts.origin or "-", 80),
            truncate(facts.fetch_site or "-", 20),
            reason,
        )
        raise web.HTTPForbidden(text=translate(reason) + "\n")
    secret = app[SERVERS].route_secret(owner, server)
    if secret is None:
        metrics.labels("refused").inc()
        raise web.HTTPServiceUnavailable(
            text=translate(N_("This server is not running. Start it from the hub's home page.")) + "\n"
        )
    metrics.labels("allowed").inc()
    app[ACTIVITY].touch_server(owner, server)
    if mode == "share":  # the hub's relay opens the server's WebSocket itself, with the token
        ticket = app[SHARE_TICKETS].issue(Ticket(user.name, owner, server))
        return web.Response(text="ok\n", headers={SHARE_TICKET_HEADER: ticket})
    cookies = cookies_without_session(request.headers.get("Cookie", ""))
    return web.Response(text="ok\n", headers={"Authorization": f"token {secret}", "Cookie": cookies})


__all__ = [
    "routes",
    "passed_by",
    "ROUTE_NAMES",
    "MODE_OF_PATH",
    "Ask",
    "normalized_path",
    "is_under",
    "cookies_without_session",
    "decide",
    "decide_now",
]
