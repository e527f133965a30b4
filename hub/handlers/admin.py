"""/hub/admin: the admin panel (users, their servers, logs)."""

from __future__ import annotations

import re
import secrets
from typing import Any, cast

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.auth.native import hash_password
from hub.errors import BadRequest, Forbidden
from hub.handlers.account import has_own_password
from hub.handlers.login import require_user
from hub.i18n import L_, LN_, N_, gettext_for
from hub.image_choice import chosen_image
from hub.keys import ACCOUNTS, ACTIVITY, IMAGE_PREP, SERVERS, SETTINGS, SIGNUPS, USERS
from hub.names import normalize_username, validate_server_name
from hub.parsing import whole_number
from hub.security import SessionUser
from hub.signups import signup_method
from hub.urls import url
from hub.users import ACTIVE_STATES, SortKey

routes = web.RouteTableDef()
PAGE_SIZE = 50
SORT_KEYS = ("name", "admin", "state", "image", "started", "last_activity", "created")
LOG_LINES = 200


async def require_admin_user(request: web.Request) -> SessionUser:
    user = await require_user(request)
    if not user.admin:
        raise Forbidden(N_("Only admins may use the admin panel."), f"{user.name} tried {request.path}")
    return user


async def flash(request: web.Request, message: str, error: bool = False) -> None:
    """A message for the next admin page, in this admin's language (``message`` is marked with N_, L_ or LN_)."""
    (await get_session(request))["flash"] = {"message": gettext_for(request)(message), "error": error}


def back_to_panel(request: web.Request) -> web.HTTPSeeOther:
    referer = request.headers.get("Referer", "")
    match = re.search(r"(/hub/admin(\?[^#\s]*)?)$", referer)
    return web.HTTPSeeOther(match.group(1) if match else url(request, "admin"))


@routes.get("/hub/admin", name="admin")
async def admin_panel(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    query = request.query
    sort = query.get("sort", "name")
    sort_key = cast(SortKey, sort if sort in SORT_KEYS else "name")
    descending = query.get("order") == "desc"
    raw_page = query.get("page", "")
    page_number = max(whole_number(raw_page, maximum=999_999) or 1, 1)
    name_filter = query.get("filter", "")[:64]
    page = await request.app[USERS].page(
        name_filter=name_filter,
        sort=sort_key,
        descending=descending,
        offset=(page_number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    session = await get_session(request)
    message = session.pop("flash", None)
    activity = request.app[ACTIVITY]
    context: dict[str, Any] = {
        "page": page,
        "rows": page.rows,
        "page_number": page_number,
        "pages": max((page.total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "sort": sort_key,
        "order": "desc" if descending else "asc",
        "filter": name_filter,
        "flash": message,
        "images": request.app[SETTINGS].images,
        "login_methods": [(method.name, method.title) for method in request.app[SETTINGS].auth.methods],
        "admin_access": request.app[SETTINGS].auth.admin_access,
        "spawning": {row.name for row in page.rows if request.app[SERVERS].is_spawning(row.name)},
        "recent": {row.name: activity.user_latest(row.name) for row in page.rows},
        # self-service accounts: who has a password the hub keeps (reset button), sign-up requests waiting
        "own_password": {row.name for row in page.rows if has_own_password(request, row.name)},
        "signups_waiting": await request.app[SIGNUPS].count_pending() if SIGNUPS in request.app else 0,
        "signups_open": signup_method(request.app[SETTINGS]) is not None,
        # each offered image: ready, being built or pulled (hub/image_prep.py), failed and why
        "image_statuses": request.app[IMAGE_PREP].statuses() if IMAGE_PREP in request.app else [],
    }
    return aiohttp_jinja2.render_template("admin.html", request, context)


@routes.post("/hub/admin/users", name="admin_add_users")
async def add_users(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    form = await request.post()
    names = [name for name in re.split(r"[\s,;]+", str(form.get("usernames", ""))) if name]
    admin = form.get("admin") == "on"
    auth = request.app[SETTINGS].auth
    method = auth.method(str(form.get("method", ""))) or auth.primary
    native = method.type == "native"
    # First passwords are hashed before anything is saved: a busy hub refuses the whole request (503)
    # instead of leaving accounts without passwords.
    fresh = {normalize_username(name): secrets.token_urlsafe(9) for name in names} if native else {}
    hashes = {name: await hash_password(password) for name, password in fresh.items()}
    created, existing = await request.app[ACCOUNTS].add(names, admin=admin, method=method.name)
    passwords: list[tuple[str, str]] = []
    for name in created if native else []:
        await request.app[ACCOUNTS].set_password_hash(name, hashes[name], admin=admin, must_change=True)
        passwords.append((name, fresh[name]))
    context = {"created": created, "existing": existing, "passwords": passwords, "admin": admin}
    return aiohttp_jinja2.render_template("admin_added.html", request, context)


@routes.post("/hub/admin/users/{name}/admin", name="admin_set_admin")
async def set_admin(request: web.Request) -> web.StreamResponse:
    me = await require_admin_user(request)
    name = request.match_info["name"]
    grant = (await request.post()).get("admin") == "1"
    if name == me.name and not grant:
        raise BadRequest(N_("You cannot take away your own admin rights."))
    await request.app[ACCOUNTS].set_admin(name, grant)
    await flash(
        request,
        L_("%(name)s is now an admin.", name=name) if grant else L_("%(name)s is no longer an admin.", name=name),
    )
    raise back_to_panel(request)


@routes.post("/hub/admin/users/{name}/start", name="admin_start")
async def start_for_user(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    image = chosen_image(request.app[SETTINGS], (await request.post()).get("image"))
    await request.app[USERS].row(name)
    await request.app[SERVERS].start(name, image, admin=True)  # the image's default resources
    await flash(request, L_("Starting %(image)s for %(name)s.", image=image.title, name=name))
    raise back_to_panel(request)


@routes.post("/hub/admin/users/{name}/stop", name="admin_stop")
async def stop_for_user(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    await request.app[USERS].row(name)
    await request.app[SERVERS].stop(name)
    await flash(request, L_("The server of %(name)s is stopped.", name=name))
    raise back_to_panel(request)


@routes.post("/hub/admin/users/{name}/servers/{server}/stop", name="admin_stop_named")
async def stop_named_for_user(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name, server = request.match_info["name"], validate_server_name(request.match_info["server"])
    await request.app[USERS].row(name)
    await request.app[SERVERS].stop(name, server=server)
    await flash(request, L_("The server %(server)s of %(name)s is stopped.", server=server, name=name))
    raise back_to_panel(request)


@routes.get("/hub/admin/stop-all", name="admin_stop_all_confirm")
async def stop_all_confirm(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    active = await request.app[USERS].page(state="active", limit=10**6)
    count = sum(
        1 for row in active.rows for server in (row.default_server, *row.named) if server.state in ACTIVE_STATES
    )
    context = {
        "action": url(request, "admin_stop_all"),
        "title": N_("Stop all servers?"),
        "question": LN_(
            "This stops %(num)d running server. Users' files are kept.",
            "This stops %(num)d running servers. Users' files are kept.",
            count,
        ),
        "volume_choice": False,
        "button": N_("Stop all servers"),
    }
    return aiohttp_jinja2.render_template("admin_confirm.html", request, context)


@routes.post("/hub/admin/stop-all", name="admin_stop_all")
async def stop_all(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    if (await request.post()).get("confirm") != "yes":
        raise BadRequest(N_("Confirm that you want to stop all servers."))
    active = await request.app[USERS].page(state="active", limit=10**6)
    stopped = 0
    for row in active.rows:
        for server in (row.default_server, *row.named):
            if server.state in ACTIVE_STATES or request.app[SERVERS].is_spawning(row.name, server.name):
                await request.app[SERVERS].stop(row.name, server=server.name)
                stopped += 1
    await flash(request, LN_("Stopped %(num)d server.", "Stopped %(num)d servers.", stopped))
    raise web.HTTPSeeOther(url(request, "admin"))


@routes.get("/hub/admin/users/{name}/delete", name="admin_delete_confirm")
async def delete_confirm(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    await request.app[USERS].row(name)
    context = {
        "action": url(request, "admin_delete", name=name),
        "title": L_("Delete %(name)s?", name=name),
        "question": L_("This stops the server of %(name)s and deletes the account.", name=name),
        "volume_choice": True,
        "button": L_("Delete %(name)s", name=name),
        "name": name,
    }
    return aiohttp_jinja2.render_template("admin_confirm.html", request, context)


@routes.post("/hub/admin/users/{name}/delete", name="admin_delete")
async def delete_user(request: web.Request) -> web.StreamResponse:
    me = await require_admin_user(request)
    name = request.match_info["name"]
    form = await request.post()
    if form.get("confirm") != "yes":
        raise BadRequest(N_("Confirm the deletion on the confirmation page."))
    if name == me.name:
        raise BadRequest(N_("You cannot delete yourself."))
    await request.app[USERS].row(name)
    remove_files = form.get("remove_volume") == "yes"
    await request.app[SERVERS].delete_user(name, request.app[ACCOUNTS].delete, remove_files=remove_files)
    message = (
        L_("Deleted %(name)s and their files.", name=name)
        if remove_files
        else L_("Deleted %(name)s; their files are kept.", name=name)
    )
    await flash(request, message)
    raise web.HTTPSeeOther(url(request, "admin"))


@routes.get("/hub/admin/users/{name}/log", name="admin_log")
async def server_log(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    name = request.match_info["name"]
    await request.app[USERS].row(name)
    server = request.query.get("server", "")
    log_text = await request.app[SERVERS].logs(name, LOG_LINES, validate_server_name(server) if server else "")
    return aiohttp_jinja2.render_template("admin_log.html", request, {"name": name, "log": log_text})
