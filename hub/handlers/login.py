"""Log in and log out."""

from __future__ import annotations

import asyncio
import logging

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from hub.auth import AuthUnavailable, login
from hub.db import get_user
from hub.errors import BadUsername, ServiceUnavailable
from hub.keys import ACCESS_POLICY, ACCOUNTS, AUTHENTICATOR, FIRST_ADMIN, LOGIN_THROTTLE, SESSIONS
from hub.models import User, utcnow
from hub.names import truncate
from hub.security import SessionUser, safe_next_url, session_user, start_session

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
HOME = "/hub/home"


def client_address(request: web.Request) -> str:
    """The browser's address: Traefik puts it first in X-Forwarded-For (it drops what clients send)."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    return forwarded.split(",")[0].strip() or str(request.remote)


async def current_user(request: web.Request) -> SessionUser | None:
    return session_user(await get_session(request), request.app[ACCOUNTS])


async def require_user(request: web.Request) -> SessionUser:
    """The logged-in user; anyone else is sent to the login page and brought back afterwards."""
    user = await current_user(request)
    if user is None:
        target = request.path_qs if request.method == "GET" else HOME
        location = request.app.router["login"].url_for().with_query(next=target)
        raise web.HTTPFound(location)
    return user


@routes.get("/hub/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    next_url = safe_next_url(request.query.get("next"), HOME)
    if await current_user(request) is not None:
        raise web.HTTPFound(next_url)
    context = {"next": next_url, "error": None, "username": "", "setup_pending": request.app[FIRST_ADMIN].pending}
    return aiohttp_jinja2.render_template("login.html", request, context)


@routes.post("/hub/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))
    next_url = safe_next_url(str(form.get("next", "")), HOME)
    throttle = request.app[LOGIN_THROTTLE]
    keys = (f"user:{username.strip().lower()}", f"addr:{client_address(request)}")
    delay = throttle.delay(*keys)
    if delay:
        await asyncio.sleep(delay)

    def refuse(message: str, status: int) -> web.StreamResponse:
        context = {"next": next_url, "error": message, "username": username}
        return aiohttp_jinja2.render_template("login.html", request, context, status=status)

    try:
        identity = await login(request.app[AUTHENTICATOR], request.app[ACCESS_POLICY], username, password)
    except BadUsername as exc:
        return refuse(exc.user_message, 400)
    except AuthUnavailable as exc:
        log.error("authenticator unavailable: %s", exc)
        raise ServiceUnavailable("Logging in is not possible right now. Please try again in a minute.") from exc
    if identity is None:
        throttle.failed(*keys)
        log.info("failed login for %s from %s", truncate(username), request.remote)
        return refuse("Invalid user name or password.", 403)
    throttle.succeeded(*keys)
    admin = bool(identity.admin)
    async with request.app[SESSIONS].begin() as session:
        user = await get_user(session, identity.username)
        if user is None:
            user = User(name=identity.username, admin=admin)
            session.add(user)
        user.admin = user.admin or admin
        user.last_activity = utcnow()
        admin = user.admin
    request.app[ACCOUNTS].remember(identity.username, admin)
    start_session(await new_session(request), identity.username)
    log.info("%s logged in", identity.username)
    raise web.HTTPFound(next_url)


@routes.get("/hub/logout", name="logout")
async def logout_page(request: web.Request) -> web.StreamResponse:
    if await current_user(request) is None:
        raise web.HTTPFound(request.app.router["login"].url_for())
    return aiohttp_jinja2.render_template("logout.html", request, {})


@routes.post("/hub/logout")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    if user is not None:  # a copied cookie must not outlive logging out: end every session of the user
        await request.app[ACCOUNTS].end_sessions(user.name)
    (await get_session(request)).invalidate()
    raise web.HTTPFound(request.app.router["login"].url_for())
