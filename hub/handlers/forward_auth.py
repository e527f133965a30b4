"""The endpoint Traefik asks before it forwards a request to a user's server.

It answers from the session cookie alone: no database, no I/O. The owner is part of the
address (each route has its own middleware), and the forwarded path must lie under that
owner's prefix once decoded and normalised, so ``/user/alice/../bob/`` never counts as alice's.
"""

from __future__ import annotations

import logging
import posixpath
from urllib.parse import unquote

from aiohttp import web
from aiohttp_session import get_session

from hub.handlers.api_auth import bearer_token
from hub.keys import ACCOUNTS, ACTIVITY, METRICS, SETTINGS, TOKENS
from hub.names import truncate
from hub.security import SESSION_COOKIE, SessionUser, session_user

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


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


def is_under(path: str, owner: str) -> bool:
    prefix = f"/user/{owner}/"
    return path.startswith(prefix) or path == prefix.rstrip("/")


def cookies_without_session(header: str) -> str:
    """The request's Cookie header minus the hub's session cookie, for the user's server."""
    kept = []
    for part in header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name != SESSION_COOKIE:
            kept.append(part.strip())
    return "; ".join(kept)


async def token_user(request: web.Request) -> SessionUser | None:
    """The owner of an API token sent as `Authorization: token ...` (checked in memory)."""
    token = bearer_token(request)
    owner = await request.app[TOKENS].check(token) if token else None
    return SessionUser(owner.username, owner.admin) if owner else None


def login_location(request: web.Request, uri: str) -> str:
    """Absolute, because Traefik resolves a relative Location against the hub's internal address.

    Traefik sets X-Forwarded-Proto and -Host itself (trustForwardHeader is off).
    """
    proto = request.headers.get("X-Forwarded-Proto", "http")
    host = request.headers.get("X-Forwarded-Host", "")
    login = request.app.router["login"].url_for().with_query(next=uri if uri.startswith("/") else "/")
    return f"{proto}://{host}{login}" if host and proto in ("http", "https") else str(login)


@routes.get("/hub/forward-auth/{owner}", name="forward_auth")
async def forward_auth(request: web.Request) -> web.StreamResponse:
    owner = request.match_info["owner"]
    uri = request.headers.get("X-Forwarded-Uri", "/")
    path = normalized_path(uri)
    user = session_user(await get_session(request), request.app[ACCOUNTS]) or await token_user(request)
    metrics = request.app[METRICS].forward_auth
    if user is None:
        metrics.labels("login").inc()
        if bearer_token(request) is None and request.headers.get("X-Forwarded-Method", "GET") in ("GET", "HEAD"):
            raise web.HTTPFound(login_location(request, uri))
        raise web.HTTPUnauthorized(text="Log in to the hub first, or send a valid token.\n")
    allowed = user.name == owner or (user.admin and request.app[SETTINGS].auth.admin_access)
    if not allowed or not is_under(path, owner):
        metrics.labels("refused").inc()
        log.info("forward-auth refused %s for %s", user.name, truncate(uri, 80))
        raise web.HTTPForbidden(text="This server belongs to another user.\n")
    metrics.labels("allowed").inc()
    request.app[ACTIVITY].touch_server(owner)
    return web.Response(text="ok\n", headers={"Cookie": cookies_without_session(request.headers.get("Cookie", ""))})


__all__ = ["routes", "normalized_path", "is_under", "cookies_without_session"]
