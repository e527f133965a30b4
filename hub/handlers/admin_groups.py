"""/hub/admin/groups: groups in the admin panel (list, create, delete, members)."""

from __future__ import annotations

import re

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.errors import BadRequest
from hub.handlers.admin import flash, require_admin_user
from hub.i18n import L_, LN_, N_
from hub.keys import GROUPS
from hub.urls import url

routes = web.RouteTableDef()


def names_in(text: object) -> list[str]:
    """User names typed into a form: one per line or separated by spaces, commas or semicolons."""
    return [name for name in re.split(r"[\s,;]+", str(text or "")) if name]


def to_group(request: web.Request, name: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(url(request, "admin_group", name=name))


@routes.get("/hub/admin/groups", name="admin_groups")
async def groups_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    page = await request.app[GROUPS].page()
    message = (await get_session(request)).pop("flash", None)
    context = {"groups": page.groups, "flash": message}
    return aiohttp_jinja2.render_template("admin_groups.html", request, context)


@routes.post("/hub/admin/groups", name="admin_create_group")
async def create_group(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = str((await request.post()).get("name", "")).strip()
    await request.app[GROUPS].create([name])
    await flash(request, L_("Created the group %(name)s.", name=name))
    raise to_group(request, name)


@routes.get("/hub/admin/groups/{name}", name="admin_group")
async def group_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    group = await request.app[GROUPS].get(request.match_info["name"])
    message = (await get_session(request)).pop("flash", None)
    return aiohttp_jinja2.render_template("admin_group.html", request, {"group": group, "flash": message})


@routes.post("/hub/admin/groups/{name}/users", name="admin_group_add")
async def add_members(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    users = names_in((await request.post()).get("usernames"))
    if not users:
        raise BadRequest(N_("Give at least one user name to add."))
    await request.app[GROUPS].add_users(name, users)
    await flash(request, L_("Added %(users)s to %(name)s.", users=", ".join(users), name=name))
    raise to_group(request, name)


@routes.post("/hub/admin/groups/{name}/users/remove", name="admin_group_remove")
async def remove_member(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    user = str((await request.post()).get("user", ""))
    if not user:
        raise BadRequest(N_("Say which member to remove."))
    await request.app[GROUPS].remove_users(name, [user])
    await flash(request, L_("Removed %(user)s from %(name)s.", user=user, name=name))
    raise to_group(request, name)


@routes.get("/hub/admin/groups/{name}/delete", name="admin_group_delete_confirm")
async def delete_confirm(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    group = await request.app[GROUPS].get(request.match_info["name"])
    context = {
        "action": url(request, "admin_group_delete", name=group.name),
        "title": L_("Delete the group %(name)s?", name=group.name),
        "question": LN_(
            "The group has %(num)d member. Their accounts are kept; images kept for this group are no longer open "
            "to them.",
            "The group has %(num)d members. Their accounts are kept; images kept for this group are no longer open "
            "to them.",
            len(group.users),
        ),
        "volume_choice": False,
        "button": L_("Delete %(name)s", name=group.name),
        "cancel": url(request, "admin_group", name=group.name),
    }
    return aiohttp_jinja2.render_template("admin_confirm.html", request, context)


@routes.post("/hub/admin/groups/{name}/delete", name="admin_group_delete")
async def delete_group(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    if (await request.post()).get("confirm") != "yes":
        raise BadRequest(N_("Confirm the deletion on the confirmation page."))
    await request.app[GROUPS].delete(name)
    await flash(request, L_("Deleted the group %(name)s.", name=name))
    raise web.HTTPSeeOther(url(request, "admin_groups"))
