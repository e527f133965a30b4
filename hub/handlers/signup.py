"""/hub/signup: ask for a built-in account (when a native method allows it), and see where the request stands."""

from __future__ import annotations

import logging

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.auth.native import hash_password, password_problem
from hub.errors import HubError, NotFound
from hub.handlers.login import current_user, too_many_attempts
from hub.i18n import N_, gettext_for
from hub.keys import LOGIN_THROTTLE, SETTINGS, SIGNUPS, TRUSTED_PROXIES
from hub.login_guard import LockedOut
from hub.names import normalize_username, truncate
from hub.signups import APPROVED, APPROVED_TEXT, PENDING, TURNED_DOWN, WAITING, signup_method

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SENT_KEY = "signup_sent"
STATE_TEXT = {PENDING: WAITING, APPROVED: APPROVED_TEXT}


def require_signup(request: web.Request) -> None:
    if signup_method(request.app[SETTINGS]) is None:
        raise NotFound(N_("This hub does not take sign-ups. Ask its administrator for an account."))


def signup_form(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    context: dict[str, object] = {
        "error": None,
        "username": "",
        "min_length": request.app[SETTINGS].auth.min_password_length,
    }
    context.update(extra)
    translate = gettext_for(request)  # messages made in Python, in the page's language
    context["error"] = translate(context["error"]) if isinstance(context["error"], str) else None
    return aiohttp_jinja2.render_template("signup.html", request, context, status=status)


def status_page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    context: dict[str, object] = {"error": None, "username": "", "sent": None, "state": None, "text": None}
    context.update(extra)
    translate = gettext_for(request)  # messages made in Python, in the page's language
    for key in ("error", "text"):
        context[key] = translate(value) if isinstance(value := context[key], str) else None
    response = aiohttp_jinja2.render_template("signup_status.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/hub/signup", name="signup")
async def signup_page(request: web.Request) -> web.StreamResponse:
    require_signup(request)
    if await current_user(request) is not None:
        raise web.HTTPFound(request.app.router["home"].url_for())
    return signup_form(request)


@routes.post("/hub/signup")
async def signup_submit(request: web.Request) -> web.StreamResponse:
    require_signup(request)
    form = await request.post()
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))
    service = request.app[SIGNUPS]
    client = request.app[TRUSTED_PROXIES].client_address(request)

    def again(message: str, status: int = 400) -> web.Response:
        return signup_form(request, status, error=message, username=username)

    try:
        service.limit.try_once(client)
        name = service.check_name(username)
    except HubError as exc:
        return again(exc.user_message, exc.status)
    problem = password_problem(password, request.app[SETTINGS].auth.min_password_length)
    if problem is not None:
        return again(problem)
    if password != form.get("password_again"):
        return again(N_("The two passwords differ."))
    password_hash = await hash_password(password)
    try:
        await service.ask(name, password_hash, client)
    except HubError as exc:
        return again(exc.user_message, exc.status)
    (await get_session(request))[SENT_KEY] = name
    raise web.HTTPSeeOther(request.app.router["signup_status"].url_for())


@routes.get("/hub/signup/status", name="signup_status")
async def signup_status_page(request: web.Request) -> web.StreamResponse:
    require_signup(request)
    sent = (await get_session(request)).pop(SENT_KEY, None)
    if isinstance(sent, str):
        return status_page(request, sent=sent, state=PENDING, text=WAITING, username=sent)
    return status_page(request)


@routes.post("/hub/signup/status")
async def signup_status_check(request: web.Request) -> web.StreamResponse:
    """Where a request stands, for whoever knows its password (guesses are throttled like logins)."""
    require_signup(request)
    form = await request.post()
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))
    client = request.app[TRUSTED_PROXIES].client_address(request)
    try:
        attempt = request.app[LOGIN_THROTTLE].claim(f"user:{normalize_username(username)[:64]}", f"addr:{client}")
    except LockedOut as exc:
        log.warning("sign-up status of %s from %s refused: too many tries", truncate(username), truncate(client))
        message = too_many_attempts(exc.seconds)
        return status_page(request, 429, error=message, username=username)
    try:
        state = await request.app[SIGNUPS].status(username, password)
    except BaseException:
        attempt.abandoned()
        raise
    if state is None:
        attempt.failed()
        message = N_("There is no sign-up request with this name and password.")
        return status_page(request, 403, error=message, username=username)
    attempt.succeeded()
    return status_page(request, state=state, text=STATE_TEXT.get(state, TURNED_DOWN), username=username)
