"""/hub/admin/announcements: announcements in the admin panel (list, add, remove)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.announcements import ANNOUNCEMENTS, MAX_LENGTH, parse_end_time
from hub.errors import NotFound
from hub.handlers.admin import flash, require_admin_user
from hub.i18n import N_
from hub.models import utcnow
from hub.parsing import whole_number
from hub.security import read_form
from hub.urls import url

routes = web.RouteTableDef()
MAX_OFFSET_MINUTES = 14 * 60
"""UTC offsets run from -12:00 to +14:00."""


def offset_of(raw: object) -> int:
    """The browser's offset east of UTC in minutes (the panel's script fills it in); 0 when missing."""
    text = str(raw or "").strip()
    negative = text.startswith("-")
    minutes = whole_number(text.removeprefix("-"), maximum=MAX_OFFSET_MINUTES)
    return 0 if minutes is None else -minutes if negative else minutes


@routes.get("/hub/admin/announcements", name="admin_announcements")
async def announcements_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    message = (await get_session(request)).pop("flash", None)
    context = {
        "items": list(reversed(request.app[ANNOUNCEMENTS].all())),
        "now": utcnow(),
        "flash": message,
        "max_length": MAX_LENGTH,
    }
    return aiohttp_jinja2.render_template("admin_announcements.html", request, context)


@routes.post("/hub/admin/announcements", name="admin_add_announcement")
async def add_announcement(request: web.Request) -> web.StreamResponse:
    admin = await require_admin_user(request)
    form = await read_form(request)
    ends_at = parse_end_time(form.get("ends_at"), offset_of(form.get("utc_offset")))
    await request.app[ANNOUNCEMENTS].add(form.get("text"), ends_at, admin.name)
    await flash(request, N_("The announcement is on every page now."))
    raise web.HTTPSeeOther(url(request, "admin_announcements"))


@routes.post("/hub/admin/announcements/{id}/remove", name="admin_remove_announcement")
async def remove_announcement(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    ident = whole_number(request.match_info["id"])
    if ident is None:
        raise NotFound(N_("There is no such announcement."))
    await request.app[ANNOUNCEMENTS].remove(ident)
    await flash(request, N_("Removed the announcement."))
    raise web.HTTPSeeOther(url(request, "admin_announcements"))
