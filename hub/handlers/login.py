"""Log in and log out."""

from __future__ import annotations

import logging
import secrets
import time

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.auth import (
    Authenticator,
    AuthUnavailable,
    HeaderAuthenticator,
    LoginRefused,
    PasswordAuthenticator,
    RedirectAuthenticator,
    check_password_login,
)
from hub.auth.pool import AuthBusy
from hub.auth_config import NativeMethod
from hub.errors import BadUsername, NotFound, ServiceUnavailable
from hub.i18n import L_, LN_, N_, Text, gettext_for
from hub.keys import ACCOUNTS, LOGIN_METHODS, LOGIN_THROTTLE, SETTINGS, SIGNUPS, TRUSTED_PROXIES
from hub.login_flow import finish_login, landing, password_methods
from hub.login_guard import LockedOut
from hub.names import normalize_username, truncate
from hub.security import SessionUser, safe_next_url, session_user
from hub.urls import url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PENDING_KEY = "login_pending"
PENDING_SECONDS = 15 * 60
"""How long a login begun at a provider may take before it counts as an old tab."""
PROVIDER_NAME = N_("Your account name from %(title)s cannot be used on this hub. Please tell the hub's administrator.")
OLD_TAB = N_(
    "This login was started in another tab, or it is too old. Please start again from the login page "
    "(and close any other login tabs)."
)


def wait_text(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return N_("a few seconds") if seconds < 60 else LN_("%(num)d minute", "%(num)d minutes", minutes)


def too_many_attempts(seconds: float) -> str:
    """The throttle's refusal (hub/login_guard.py), in words for the login and sign-up pages."""
    return L_("Too many failed attempts. Please wait %(wait)s and try again.", wait=wait_text(seconds))


async def current_user(request: web.Request) -> SessionUser | None:
    return session_user(await get_session(request), request.app[ACCOUNTS])


async def require_user(request: web.Request) -> SessionUser:
    """The logged-in user; anyone else is sent to the login page and brought back afterwards."""
    user = await current_user(request)
    if user is None:
        target = request.path_qs if request.method == "GET" else url(request, "home")
        location = request.app.router["login"].url_for().with_query(next=target)
        raise web.HTTPFound(location)
    account = request.app[ACCOUNTS].get(user.name)
    if account is not None and account.password_must_change and "change_password" in request.app.router:
        change = request.app.router["change_password"].url_for()
        if request.path != change.path:  # an admin reset the password: a new one first
            raise web.HTTPFound(change.with_query(next=request.path_qs if request.method == "GET" else ""))
    return user


def login_context(request: web.Request, next_url: str, **extra: object) -> dict[str, object]:
    """What the login page shows: a form per password method, a button per provider, a link per front proxy."""
    methods = request.app[LOGIN_METHODS]
    settings = request.app[SETTINGS]

    def link(route: str, backend: Authenticator) -> str:
        return str(request.app.router[route].url_for().with_query(method=backend.method.name, next=next_url))

    native = [backend for backend in methods if backend.name == "native"]
    context: dict[str, object] = {
        "next": next_url,
        "error": None,
        "username": "",
        "chosen": "",
        "password_methods": [(b.method.name, b.method.title) for b in methods.of_kind("password")],
        "redirect_methods": [(b.method.title, link("oauth_login", b)) for b in methods.of_kind("redirect")],
        "header_methods": [(b.method.title, link("header_login", b)) for b in methods.of_kind("header")],
        "signup_methods": [
            b.method.name for b in native if isinstance(b.method, NativeMethod) and b.method.allow_signup
        ],
        "setup_pending": bool(native) and not request.app[ACCOUNTS].any() and settings.auth.primary.type == "native",
    }
    context.update(extra)
    return context


def refusal(request: web.Request, next_url: str, message: str, status: int, **extra: object) -> web.StreamResponse:
    context = login_context(request, next_url, error=gettext_for(request)(message), **extra)
    return aiohttp_jinja2.render_template("login.html", request, context, status=status)


@routes.get("/hub/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    next_url = safe_next_url(request.query.get("next"), url(request, "home"))
    if await current_user(request) is not None:
        raise web.HTTPFound(next_url)
    return aiohttp_jinja2.render_template("login.html", request, login_context(request, next_url))


@routes.post("/hub/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))
    next_url = safe_next_url(str(form.get("next", "")), url(request, "home"))
    client = request.app[TRUSTED_PROXIES].client_address(request)
    candidates = password_methods(request)
    chosen = str(form.get("method", "")) or (candidates[0].method.name if candidates else "")
    backend = next((candidate for candidate in candidates if candidate.method.name == chosen), None)

    def refuse(message: str, status: int) -> web.StreamResponse:
        return refusal(request, next_url, message, status, username=username, chosen=chosen)

    if not isinstance(backend, PasswordAuthenticator):
        return refuse(N_("This way of logging in does not take a password here. Please choose one on this page."), 400)
    try:
        attempt = request.app[LOGIN_THROTTLE].claim(f"user:{normalize_username(username)[:64]}", f"addr:{client}")
    except LockedOut as exc:
        log.warning("login of %s from %s refused: too many failed attempts", truncate(username), truncate(client))
        return refuse(too_many_attempts(exc.seconds), 429)
    # The session counts as issued when the check began: a password reset, a logout everywhere or a
    # deletion that lands while the (slow) check runs moves the cut-off past it, so it never counts.
    began = time.time()
    try:
        identity = await check_password_login(backend, username, password)
        if identity is None:
            attempt.failed()
            log.info("failed login for %s from %s", truncate(username), truncate(client))
            # self-service (signups helper): a built-in login of someone whose sign-up is not approved (yet)
            native = backend.name == "native"
            waiting = await request.app[SIGNUPS].pending_message(username, password) if native else None
            return refuse(waiting or N_("Invalid user name or password."), 403)
        account = await finish_login(request, backend, identity, began)
    except BadUsername as exc:
        attempt.failed()
        return refuse(exc.user_message, 400)
    except LoginRefused as exc:
        attempt.failed()
        return refuse(exc.user_message, exc.status)
    except AuthBusy as exc:
        attempt.abandoned()
        log.warning("login of %s turned away: %s", truncate(username), exc)
        raise ServiceUnavailable(
            N_("Many people are logging in right now. Please try again in a few seconds.")
        ) from exc
    except AuthUnavailable as exc:
        attempt.abandoned()
        log.error("login method %s unavailable: %s", backend.method.name, exc)
        raise ServiceUnavailable(exc.user_message) from exc
    except BaseException:
        attempt.abandoned()
        raise
    attempt.succeeded()
    raise web.HTTPFound(landing(request, account, next_url))


def callback_url(request: web.Request, backend: Authenticator) -> str:
    configured = getattr(backend.method, "oauth_callback_url", None)
    if configured:
        return str(configured)
    return request.app[SETTINGS].hub.public_url.rstrip("/") + str(request.app.router["oauth_callback"].url_for())


def chosen_backend(request: web.Request, kind: str) -> Authenticator:
    backend = request.app[LOGIN_METHODS].get(request.query.get("method", ""))
    if backend is None or backend.login_kind != kind:
        raise NotFound(N_("There is no such way of logging in on this hub."))
    return backend


@routes.get("/hub/oauth_login", name="oauth_login")
async def oauth_login(request: web.Request) -> web.StreamResponse:
    """Send the browser to the provider; what must be checked on its return waits in the encrypted session."""
    next_url = safe_next_url(request.query.get("next"), url(request, "home"))
    backend = chosen_backend(request, "redirect")
    assert isinstance(backend, RedirectAuthenticator)
    try:
        location, kept = await backend.begin(callback_url(request, backend))
    except AuthUnavailable as exc:
        log.error("login method %s unavailable: %s", backend.method.name, exc)
        return refusal(request, next_url, exc.user_message, 503)
    session = await get_session(request)
    session[PENDING_KEY] = {**kept, "method": backend.method.name, "next": next_url, "began": time.time()}
    raise web.HTTPFound(location)


@routes.get("/hub/oauth_callback", name="oauth_callback")
async def oauth_callback(request: web.Request) -> web.StreamResponse:
    """The provider sends the browser back here with a code (or an error)."""
    session = await get_session(request)
    pending = session.pop(PENDING_KEY, None)
    home = url(request, "home")
    if not isinstance(pending, dict) or not isinstance(pending.get("state"), str):
        log.warning("login callback without a login under way in this browser")
        return refusal(request, home, OLD_TAB, 400)
    next_url = safe_next_url(str(pending.get("next", "")), home)
    backend = request.app[LOGIN_METHODS].get(str(pending.get("method", "")))
    if not isinstance(backend, RedirectAuthenticator):
        return refusal(request, next_url, OLD_TAB, 400)
    params = {key: value for key, value in request.query.items()}
    if "error" in params:
        error = params["error"]
        log.warning(
            "%s reported %s: %s", backend.method.name, truncate(error), truncate(params.get("error_description", ""))
        )
        if error == "access_denied":
            message = L_(
                "You did not allow this hub to use your %(title)s account, so you are not logged in. "
                "To log in, start again and allow it.",
                title=backend.method.title,
            )
        else:
            message = L_(
                "%(title)s could not log you in (%(error)s). Please start again.",
                title=backend.method.title,
                error=truncate(error),
            )
        return refusal(request, next_url, message, 403)
    if not secrets.compare_digest(params.get("state", "").encode(), pending["state"].encode()):
        log.warning("%s: the callback's state does not match this browser's login", backend.method.name)
        return refusal(request, next_url, OLD_TAB, 400)
    started = pending.get("began")
    if not isinstance(started, (int, float)) or time.time() - started > PENDING_SECONDS:
        log.warning("%s: the login under way in this browser is too old", backend.method.name)
        return refusal(request, next_url, OLD_TAB, 400)
    began = time.time()  # the session counts from now: a "log out everywhere" meanwhile does not undo it
    kept = {key: str(value) for key, value in pending.items()}
    try:
        identity = await backend.complete(params, kept, callback_url(request, backend))
        account = await finish_login(request, backend, identity, began)
    except LoginRefused as exc:
        log.warning("login with %s refused: %s", backend.method.name, exc)
        return refusal(request, next_url, exc.user_message, exc.status)
    except BadUsername as exc:
        log.warning("%s named an unusable user: %s", backend.method.name, exc.detail)
        return refusal(request, next_url, Text(PROVIDER_NAME, names={"title": backend.method.title}), 400)
    except AuthUnavailable as exc:
        log.error("login method %s unavailable: %s", backend.method.name, exc)
        return refusal(request, next_url, exc.user_message, 503)
    raise web.HTTPFound(landing(request, account, next_url))


@routes.get("/hub/header_login", name="header_login")
async def header_login(request: web.Request) -> web.StreamResponse:
    """Log in as the user the institution's front proxy names (only from that proxy's address)."""
    next_url = safe_next_url(request.query.get("next"), url(request, "home"))
    backend = chosen_backend(request, "header")
    assert isinstance(backend, HeaderAuthenticator)
    began = time.time()
    try:
        identity = await backend.identify(request, request.app[TRUSTED_PROXIES].client_address(request))
        if identity is None:
            return refusal(
                request, next_url, N_("Your institution's login did not say who you are. Please log in again."), 403
            )
        account = await finish_login(request, backend, identity, began)
    except LoginRefused as exc:
        return refusal(request, next_url, exc.user_message, exc.status)
    except BadUsername as exc:
        log.warning("%s named an unusable user: %s", backend.method.name, exc.detail)
        return refusal(request, next_url, Text(PROVIDER_NAME, names={"title": backend.method.title}), 400)
    raise web.HTTPFound(landing(request, account, next_url))


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
