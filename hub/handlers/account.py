"""/hub/change-password: people with a built-in account choose a new password themselves.

The current password is required (checked like a login, with the same lock-out against guessing).
Saving it ends every session of the account, everywhere; this browser gets a fresh one, so the
person stays logged in here while a stolen or forgotten session elsewhere stops working.
"""

from __future__ import annotations

import logging
import time

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from hub.auth.native import hash_password, password_problem, verify_password
from hub.db import get_user
from hub.handlers.login import require_user, wait_text
from hub.i18n import L_, N_, gettext_for
from hub.keys import ACCOUNTS, LOGIN_THROTTLE, SESSIONS, SETTINGS
from hub.login_guard import LockedOut
from hub.security import safe_next_url, start_session
from hub.urls import url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
NOTICE_KEY = "password_notice"
MUST_CHANGE = N_("An admin reset your password: choose a new one to continue.")


def has_own_password(request: web.Request, name: str) -> bool:
    """Whether the account belongs to a built-in (native) login method, whose password the hub keeps."""
    account = request.app[ACCOUNTS].get(name)
    settings = request.app[SETTINGS]
    if account is None:
        return False
    method = settings.auth.method(account.method) if account.method else settings.auth.primary
    return method is not None and method.type == "native"


def render(request: web.Request, name: str, status: int = 200, **extra: object) -> web.Response:
    account = request.app[ACCOUNTS].get(name)
    context: dict[str, object] = {
        "own_password": has_own_password(request, name),
        "must_change": bool(account and account.password_must_change),
        "must_change_text": gettext_for(request)(MUST_CHANGE),
        "min_length": request.app[SETTINGS].auth.min_password_length,
        "next": safe_next_url(request.query.get("next"), ""),
        "error": None,
        "notice": None,
    }
    context.update(extra)
    translate = gettext_for(request)  # the messages below in the page's language (hub/i18n.py)
    for key in ("error", "notice"):
        value = context[key]
        if isinstance(value, str):
            context[key] = translate(value)
    response = aiohttp_jinja2.render_template("change_password.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/hub/change-password", name="change_password")
async def change_password_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    notice = (await get_session(request)).pop(NOTICE_KEY, None)
    return render(request, user.name, notice=notice if isinstance(notice, str) else None)


@routes.post("/hub/change-password")
async def change_password(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    if not has_own_password(request, user.name):
        return render(request, user.name, status=400)
    form = await request.post()
    current = str(form.get("current_password", ""))
    new = str(form.get("new_password", ""))
    next_url = safe_next_url(str(form.get("next", "")), "")

    def again(message: str, status: int = 400) -> web.Response:
        return render(request, user.name, status=status, error=message, next=next_url)

    problem = password_problem(new, request.app[SETTINGS].auth.min_password_length)
    if problem is not None:
        return again(problem)
    if new != form.get("new_password_again"):
        return again(N_("The two new passwords differ."))
    try:
        attempt = request.app[LOGIN_THROTTLE].claim(f"user:{user.name}")
    except LockedOut as exc:
        log.warning("password change of %s refused: too many wrong current passwords", user.name)
        return again(
            L_("Too many wrong passwords. Please wait %(wait)s and try again.", wait=wait_text(exc.seconds)), 429
        )
    try:
        async with request.app[SESSIONS]() as db:
            row = await get_user(db, user.name)
        right = await verify_password(row.password_hash if row else None, current)
    except BaseException:
        attempt.abandoned()
        raise
    if not right:
        attempt.failed()
        log.info("password change of %s refused: wrong current password", user.name)
        return again(N_("Your current password is not right."), 403)
    attempt.succeeded()
    if new == current:
        return again(N_("The new password is the same as the current one. Choose a different one."))
    accounts = request.app[ACCOUNTS]
    await accounts.set_password_hash(user.name, await hash_password(new))  # every session of the account ends
    account = accounts.get(user.name)
    if account is None:  # deleted meanwhile
        raise web.HTTPFound(url(request, "login"))
    session = await new_session(request)
    start_session(session, user.name, account.id, issued=max(time.time(), account.sessions_valid_after + 0.001))
    session[NOTICE_KEY] = N_("Your password is changed. You were logged out everywhere else.")
    log.info("%s changed their password; their other sessions ended", user.name)
    target = request.app.router["change_password"].url_for()
    raise web.HTTPSeeOther(target.with_query(next=next_url) if next_url else target)
