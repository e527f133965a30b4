"""Home, spawn form, spawn progress, stop, and what /user/<name>/ shows when no server is routed."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from hub import resources
from hub.config import ImageSpec
from hub.errors import BadRequest, BadUsername, Forbidden
from hub.handlers.account import has_own_password
from hub.handlers.errors import error_response
from hub.handlers.login import require_user
from hub.handlers.sharing import sharing_context
from hub.i18n import N_
from hub.image_choice import chosen_image, default_image, require_may_start, startable_images
from hub.keys import GPUS, GROUPS, SERVERS, SETTINGS, SHARING
from hub.models import ServerState
from hub.names import truncate, user_prefix, validate_server_name, validate_username
from hub.security import SessionUser
from hub.servers import failure_reason
from hub.urls import url
from hub.usage import last_usage, measures

routes = web.RouteTableDef()


def may_manage(user: SessionUser, name: str) -> bool:
    return user.name == name or user.admin


def pending_url(request: web.Request, name: str, server: str = "") -> str:
    if server:
        return str(request.app.router["spawn_pending_named"].url_for(name=name, server=server))
    return str(request.app.router["spawn_pending"].url_for(name=name))


def form_server(form: MultiMapping[object]) -> str:
    """The server a form names ("" for the default one), checked."""
    server = str(form.get("server", "") or "").strip()
    return validate_server_name(server) if server else ""


def image_cards(request: web.Request, images: list[ImageSpec], groups: frozenset[str], admin: bool) -> dict[str, Any]:
    """What the spawn form shows of each image: its resource selects (hub/resources.py), or its fixed limits in
    words, and the free GPUs. Images whose every option is above the person's maxima are left out."""
    settings, allocator = request.app[SETTINGS], request.app[GPUS]
    cards = []
    for image in images:
        try:
            offers = resources.offered(image, groups, admin, settings, host_gpus=allocator.total)
            limits = (
                None if offers else resources.resolve(image, {}, groups, admin, settings, host_gpus=allocator.total)
            )
        except Forbidden:
            continue
        cards.append({"image": image, "offers": offers, "limits": limits.describe() if limits else None})
    gpus = (
        {"free": len(allocator.free()), "total": allocator.total, "sharing": allocator.sharing}
        if allocator.total
        else None
    )
    return {"cards": cards, "images": [card["image"] for card in cards], "gpus": gpus}


@routes.get("/", name="root")
@routes.get("/hub", name="hub_bare")
@routes.get("/hub/", name="hub_root")
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(request.app.router["home"].url_for())


@routes.get("/hub/home", name="home")
async def home(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    servers = request.app[SERVERS]
    view = await servers.view(user.name)
    image = request.app[SETTINGS].image(view.image_name) if view else None
    settings = request.app[SETTINGS]
    named = [found for found in await servers.views(user.name) if found.name]
    running = view is not None and view.state == ServerState.RUNNING
    context = {
        "server": view,
        "image": image,
        "spawning": servers.is_spawning(user.name),
        "server_url": servers.server_url(user.name, image),
        "own_password": has_own_password(request, user.name),  # a "Change my password" link
        "named_servers_enabled": settings.spawner.named_servers,
        "named": named,
        "named_spawning": servers.spawning_servers(user.name),
        "named_urls": {
            found.name: servers.server_url(user.name, settings.image(found.image_name), found.name) for found in named
        },
        "named_titles": {
            found.name: getattr(settings.image(found.image_name), "title", found.image_name) for found in named
        },
        "named_limit": settings.lifecycle.named_server_limit_per_user or None,
        # CPU and memory now: the last reading, at once; hub/static/usage.js asks /hub/home/usage for a fresh one
        "usage_src": url(request, "home_usage") if running and measures(request.app) else None,
        "usage": last_usage(request.app, user.name, since=view.started) if running and view else None,
        **await sharing_context(request, user.name),  # "Shared with me" (hub/handlers/sharing.py)
    }
    return aiohttp_jinja2.render_template("home.html", request, context)


@routes.get("/hub/spawn", name="spawn")
async def spawn_form(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    servers = request.app[SERVERS]
    if servers.is_spawning(user.name):
        raise web.HTTPFound(pending_url(request, user.name))
    view = await servers.view(user.name)
    settings = request.app[SETTINGS]
    if view and view.state == ServerState.RUNNING:
        raise web.HTTPFound(servers.server_url(user.name, settings.image(view.image_name)))
    groups = request.app[GROUPS].groups_of(user.name)
    context = image_cards(request, startable_images(settings.images, groups, user.admin), groups, user.admin)
    images = context["images"]
    fallback = default_image(settings, groups, user.admin)
    if fallback not in images:
        fallback = images[0] if images else None
    selected = view.image_name if view and view.image_name in {i.name for i in images} else None
    context["selected"] = selected or (fallback.name if fallback else None)
    return aiohttp_jinja2.render_template("spawn.html", request, context)


@routes.post("/hub/spawn")
async def spawn_submit(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    options = resources.options_from_form(await request.post())
    image = chosen_image(
        request.app[SETTINGS],
        options.get("image"),
        hint=" Go back to the spawn form and pick one of the images listed there.",
    )
    require_may_start(image, request.app[GROUPS].groups_of(user.name), user.admin)
    await request.app[SERVERS].start(user.name, image, user_options=options, admin=user.admin)
    raise web.HTTPSeeOther(pending_url(request, user.name))


@routes.get("/hub/spawn/{name}/{server}", name="spawn_named")
async def spawn_named_form(request: web.Request) -> web.StreamResponse:
    """JupyterHub's address of the spawn form of a named server (made by the start)."""
    user = await require_user(request)
    name, server = request.match_info["name"], validate_server_name(request.match_info["server"])
    if not may_manage(user, name):
        raise Forbidden(N_("You can only start your own servers."))
    servers = request.app[SERVERS]
    if servers.is_spawning(name, server):
        raise web.HTTPFound(pending_url(request, name, server))
    view = await servers.view(name, server)
    settings = request.app[SETTINGS]
    if view and view.state == ServerState.RUNNING:
        raise web.HTTPFound(servers.server_url(name, settings.image(view.image_name), server))
    groups = request.app[GROUPS].groups_of(name)
    context = image_cards(request, startable_images(settings.images, groups, user.admin), groups, user.admin)
    images = context["images"]
    fallback = default_image(settings, groups, user.admin)
    if fallback not in images:
        fallback = images[0] if images else None
    selected = view.image_name if view and view.image_name in {i.name for i in images} else None
    context["selected"] = selected or (fallback.name if fallback else None)
    context["action"] = str(request.app.router["spawn_named"].url_for(name=name, server=server))
    context["server_name"] = server
    return aiohttp_jinja2.render_template("spawn.html", request, context)


@routes.post("/hub/spawn/{name}/{server}")
async def spawn_named_submit(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    name, server = request.match_info["name"], validate_server_name(request.match_info["server"])
    if not may_manage(user, name):
        raise Forbidden(N_("You can only start your own servers."))
    options = resources.options_from_form(await request.post())
    image = chosen_image(
        request.app[SETTINGS],
        options.get("image"),
        hint=" Go back to the spawn form and pick one of the images listed there.",
    )
    require_may_start(image, request.app[GROUPS].groups_of(name), user.admin)
    await request.app[SERVERS].start(name, image, server, user_options=options, admin=user.admin)
    raise web.HTTPSeeOther(pending_url(request, name, server))


@routes.post("/hub/new-server", name="new_server")
async def new_server(request: web.Request) -> web.StreamResponse:
    """The home page's field for a new server's name leads to that server's spawn form."""
    user = await require_user(request)
    server = form_server(await request.post())
    if not server:
        raise BadRequest(N_("Give the new server a name."))
    raise web.HTTPSeeOther(str(request.app.router["spawn_named"].url_for(name=user.name, server=server)))


@routes.get("/hub/spawn-pending/{name}", name="spawn_pending")
@routes.get("/hub/spawn-pending/{name}/{server}", name="spawn_pending_named")
async def spawn_pending(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    name, server = request.match_info["name"], request.match_info.get("server", "")
    if not may_manage(user, name):
        raise Forbidden(N_("You can only follow the start of your own server."))
    servers = request.app[SERVERS]
    progress = servers.progress(name, server)
    view = await servers.view(name, server)
    if view is not None and view.state == ServerState.FAILED and not servers.is_spawning(name, server):
        # the reason as this hub made it, in the reader's language (the database keeps the English text)
        reason = failure_reason(progress) or view.error or ""
        return error_response(request, 500, N_("Your server could not start"), reason, view.error_log or "")
    if progress is None or view is None or view.state == ServerState.STOPPED:
        raise web.HTTPFound(request.app.router["home"].url_for())
    stream = (
        url(request, "progress_stream_named", name=name, server=server)
        if server
        else url(request, "progress_stream", name=name)
    )
    context = {"owner": name, "events": progress.events, "progress_url": stream, "server_name": server}
    return aiohttp_jinja2.render_template("progress.html", request, context)


@routes.post("/hub/stop", name="stop")
async def stop_server(request: web.Request) -> web.StreamResponse:
    """Stop one of your servers: the default one, or the one the form names."""
    user = await require_user(request)
    server = form_server(await request.post())
    await request.app[SERVERS].stop(user.name, server=server)
    raise web.HTTPSeeOther(str(request.app.router["home"].url_for()))


@routes.post("/hub/delete-server", name="delete_server")
async def delete_server(request: web.Request) -> web.StreamResponse:
    """Stop and forget one of your named servers (its files are kept)."""
    user = await require_user(request)
    server = form_server(await request.post())
    await request.app[SERVERS].delete_server(user.name, server)
    raise web.HTTPSeeOther(str(request.app.router["home"].url_for()))


@routes.get("/hub/user/{name}{tail:.*}", name="hub_user_redirect")
async def hub_user_redirect(request: web.Request) -> web.StreamResponse:
    """JupyterHub's /hub/user/<name>/ address leads to the server's own address."""
    raise web.HTTPFound(f"/user/{request.match_info['name']}{request.match_info['tail'] or '/'}")


@routes.get("/hub/user-redirect/{tail:.*}", name="user_redirect")
async def user_redirect(request: web.Request) -> web.StreamResponse:
    """JupyterHub's /hub/user-redirect/<path>: the same path on the logged-in person's own server, so one link
    (nbgitpuller's, a course page's) works for everyone. Someone not logged in logs in first and comes back."""
    user = await require_user(request)
    tail = request.match_info["tail"]
    if ".." in tail.split("/"):
        raise BadRequest(N_("This link leads out of your own server's address, so the hub does not follow it."))
    query = request.rel_url.raw_query_string  # passed on as sent: nbgitpuller's links carry encoded URLs
    raise web.HTTPFound(str(URL.build(path=user_prefix(user.name) + tail)) + (f"?{query}" if query else ""))


@routes.route("*", "/user/{name}", name="user_bare")
async def user_bare(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"/user/{request.match_info['name']}/")


@routes.route("*", "/user/{name}/{tail:.*}", name="user_not_routed")
async def user_not_routed(request: web.Request) -> web.StreamResponse:
    """Traefik sends /user/<name>/ here only when that user has no live route."""
    user = await require_user(request)
    name = request.match_info["name"]
    try:
        user_prefix(validate_username(name))
    except BadUsername:
        raise web.HTTPNotFound() from None
    shared = request.app[SHARING].may_use
    first_part = request.match_info["tail"].split("/", 1)[0]
    if not may_manage(user, name) and not shared(user.name, name, first_part) and not shared(user.name, name, ""):
        raise Forbidden(
            N_("This server belongs to another user."), f"{user.name} tried to open {truncate(name)}'s server"
        )
    servers = request.app[SERVERS]
    first = request.match_info["tail"].split("/", 1)[0]
    server = first if first and await servers.view(name, first) is not None else ""
    if servers.is_spawning(name, server):
        raise web.HTTPFound(pending_url(request, name, server))
    view = await servers.view(name, server)
    start = (
        str(request.app.router["spawn_named"].url_for(name=name, server=server)) if server else url(request, "spawn")
    )
    context = {"owner": name, "server": view, "own": name == user.name, "server_name": server, "start_url": start}
    return aiohttp_jinja2.render_template("not_running.html", request, context, status=503)
