"""Log in and log out."""

from __future__ import annotations

import logging
import time

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from hub.auth import AuthUnavailable, login
from hub.auth.pool import AuthBusy
from hub.errors import BadUsername, ServiceUnavailable
from hub.keys import ACCESS_POLICY, ACCOUNTS, AUTHENTICATOR, LOGIN_THROTTLE, SETTINGS, TRUSTED_PROXIES
from hub.login_guard import LockedOut
from hub.names import normalize_username, truncate
from hub.security import SessionUser, safe_next_url, session_user, start_session
from hub.urls import url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def wait_text(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "a few seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes != 1 else ''}"


async def current_user(request: web.Request) -> SessionUser | None:
    return session_user(await get_session(request), request.app[ACCOUNTS])


async def require_user(request: web.Request) -> SessionUser:
    """The logged-in user; anyone else is sent to the login page and brought back afterwards."""
    user = await current_user(request)
    if user is None:
        target = request.path_qs if request.method == "GET" else url(request, "home")
        location = request.app.router["login"].url_for().with_query(next=target)
        raise web.HTTPFound(location)
    return user


@routes.get("/hub/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    next_url = safe_next_url(request.query.get("next"), url(request, "home"))
    if await current_user(request) is not None:
        raise web.HTTPFound(next_url)
    pending = request.app[SETTINGS].auth.type == "native" and not request.app[ACCOUNTS].any()
    context = {"next": next_url, "error": None, "username": "", "setup_pending": pending}
    return aiohttp_jinja2.render_template("login.html", request, context)


@routes.post("/hub/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))
    next_url = safe_next_url(str(form.get("next", "")), url(request, "home"))
    client = request.app[TRUSTED_PROXIES].client_address(request)

    def refuse(message: str, status: int) -> web.StreamResponse:
        context = {"next": next_url, "error": message, "username": username}
        return aiohttp_jinja2.render_template("login.html", request, context, status=status)

    try:
        attempt = request.app[LOGIN_THROTTLE].claim(f"user:{normalize_username(username)[:64]}", f"addr:{client}")
    except LockedOut as exc:
        log.warning("login of %s from %s refused: too many failed attempts", truncate(username), truncate(client))
        return refuse(f"Too many failed attempts. Please wait {wait_text(exc.seconds)} and try again.", 429)
    # The session counts as issued when the check began: a password reset, a logout everywhere or a
    # deletion that lands while the (slow) check runs moves the cut-off past it, so it never counts.
    began = time.time()
    try:
        identity = await login(request.app[AUTHENTICATOR], request.app[ACCESS_POLICY], username, password)
    except BadUsername as exc:
        attempt.failed()
        return refuse(exc.user_message, 400)
    except AuthBusy as exc:
        attempt.abandoned()
        log.warning("login of %s turned away: %s", truncate(username), exc)
        raise ServiceUnavailable("Many people are logging in right now. Please try again in a few seconds.") from exc
    except AuthUnavailable as exc:
        attempt.abandoned()
        log.error("authenticator unavailable: %s", exc)
        raise ServiceUnavailable("Logging in is not possible right now. Please try again in a minute.") from exc
    except BaseException:
        attempt.abandoned()
        raise
    if identity is None:
        attempt.failed()
        log.info("failed login for %s from %s", truncate(username), truncate(client))
        return refuse("Invalid user name or password.", 403)
    attempt.succeeded()
    backend = request.app[AUTHENTICATOR]
    account = await request.app[ACCOUNTS].ensure(
        identity.username,
        admin=bool(identity.admin),
        logged_in=True,
        create=backend.creates_accounts,
        valid_after=began - 0.001,
    )
    if account is None:  # deleted while the password was being checked
        return refuse("Invalid user name or password.", 403)
    start_session(await new_session(request), identity.username, account.id, issued=began)
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
