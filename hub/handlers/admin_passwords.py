"""Admins reset a built-in account's password: the hub makes a temporary one, shows it once, and the
user must choose their own at their next login. Their sessions end at once."""

from __future__ import annotations

import logging
import secrets

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.auth.native import hash_password, password_problem
from hub.errors import BadRequest
from hub.handlers.account import has_own_password
from hub.handlers.admin import require_admin_user
from hub.i18n import L_, N_
from hub.keys import ACCOUNTS, SETTINGS, USERS
from hub.urls import url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SHOW_ONCE_KEY = "reset_password_shown_once"


def temporary_password(min_length: int) -> str:
    """A strong random password, never shorter than the hub's minimum (16 characters or more)."""
    password = secrets.token_urlsafe(max(12, min_length))
    assert password_problem(password, min_length) is None
    return password


async def resettable(request: web.Request) -> str:
    """The name in the path, when an admin other than its owner may reset its password."""
    me = await require_admin_user(request)
    name = request.match_info["name"]
    await request.app[USERS].row(name)  # NotFound for an unknown user
    if name == me.name:
        raise BadRequest(N_("Change your own password on the “Change password” page instead."))
    if not has_own_password(request, name):
        raise BadRequest(L_("The password of %(name)s is managed by their login provider, not by this hub.", name=name))
    return name


@routes.get("/hub/admin/users/{name}/password", name="admin_reset_password_confirm")
async def reset_confirm(request: web.Request) -> web.StreamResponse:
    name = await resettable(request)
    context = {
        "action": url(request, "admin_reset_password", name=name),
        "title": L_("Reset the password of %(name)s?", name=name),
        "question": L_(
            "The hub makes a new temporary password for %(name)s and shows it to you once. Their current password "
            "stops working, they are logged out everywhere, and they must choose a new password when they next log in.",
            name=name,
        ),
        "volume_choice": False,
        "button": N_("Reset password"),
    }
    return aiohttp_jinja2.render_template("admin_confirm.html", request, context)


@routes.post("/hub/admin/users/{name}/password", name="admin_reset_password")
async def reset_password(request: web.Request) -> web.StreamResponse:
    name = await resettable(request)
    if (await request.post()).get("confirm") != "yes":
        raise BadRequest(N_("Confirm the reset on the confirmation page."))
    password = temporary_password(request.app[SETTINGS].auth.min_password_length)
    await request.app[ACCOUNTS].set_password_hash(name, await hash_password(password), must_change=True)
    log.info("the password of %s was reset by an admin", name)  # never the password itself
    # Shown by the next page, once: a reload shows it no more (and does not reset the password again).
    # Until then it waits in the admin's session cookie, which is encrypted.
    (await get_session(request))[SHOW_ONCE_KEY] = {"name": name, "password": password}
    raise web.HTTPSeeOther(url(request, "admin_reset_password_done", name=name))


@routes.get("/hub/admin/users/{name}/password/done", name="admin_reset_password_done")
async def reset_done(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    shown = (await get_session(request)).pop(SHOW_ONCE_KEY, None)
    password = shown.get("password") if isinstance(shown, dict) and shown.get("name") == name else None
    context = {"name": name, "password": password}
    response = aiohttp_jinja2.render_template("admin_password.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response
