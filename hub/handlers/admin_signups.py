"""/hub/admin/signups: sign-up requests waiting for an admin, approved or rejected one by one."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.errors import NotFound
from hub.handlers.admin import flash, require_admin_user
from hub.i18n import L_, N_
from hub.keys import SETTINGS, SIGNUPS
from hub.parsing import whole_number
from hub.signups import signup_method
from hub.urls import url

routes = web.RouteTableDef()


def request_id(request: web.Request) -> int:
    number = whole_number(request.match_info["id"])
    if number is None:
        raise NotFound(N_("There is no such sign-up request."))
    return number


@routes.get("/hub/admin/signups", name="admin_signups")
async def signups_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    context = {
        "requests": await request.app[SIGNUPS].pending(),
        "enabled": signup_method(request.app[SETTINGS]) is not None,
        "flash": (await get_session(request)).pop("flash", None),
    }
    return aiohttp_jinja2.render_template("admin_signups.html", request, context)


@routes.post("/hub/admin/signups/{id}/approve", name="admin_signup_approve")
async def approve(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = await request.app[SIGNUPS].approve(request_id(request))
    await flash(request, L_("Approved: %(name)s can log in now.", name=name))
    raise web.HTTPSeeOther(url(request, "admin_signups"))


@routes.post("/hub/admin/signups/{id}/reject", name="admin_signup_reject")
async def reject(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = await request.app[SIGNUPS].reject(request_id(request))
    await flash(request, L_("Rejected the request of %(name)s.", name=name))
    raise web.HTTPSeeOther(url(request, "admin_signups"))
