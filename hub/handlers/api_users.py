"""REST API: users and their servers, in JupyterHub's paths and shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from aiohttp import web

from hub.api_models import API_VERSION, user_model
from hub.errors import BadRequest, Conflict, HubError, NotFound
from hub.handlers.api_auth import api_requester, require_admin, require_manager_of
from hub.image_choice import chosen_image, default_image, require_may_start
from hub.keys import ACCOUNTS, ACTIVITY, GROUPS, SERVERS, SETTINGS, USERS
from hub.models import ServerState
from hub.names import truncate, validate_server_name
from hub.parsing import require_whole_number
from hub.urls import url
from hub.users import StateFilter, UserRow

routes = web.RouteTableDef()
PAGINATION = "application/jupyterhub-pagination+json"
DEFAULT_LIMIT = 200
MAX_LIMIT = 200
START_WAIT_SECONDS = 10.0


def progress_url(request: web.Request, name: str, server: str = "") -> str:
    if server:
        return url(request, "progress_stream_named", name=name, server=server)
    return url(request, "progress_stream", name=name)


def model_of(request: web.Request, row: UserRow) -> dict[str, Any]:
    activity = request.app[ACTIVITY]
    settings = request.app[SETTINGS]
    stopped = request.query.get("include_stopped_servers")
    return user_model(
        row,
        spawning=request.app[SERVERS].spawning_servers(row.name),
        user_activity=activity.user_latest(row.name),
        server_activity=lambda server: activity.server_latest(row.name, server),
        progress_url=lambda server: progress_url(request, row.name, server),
        include_stopped=stopped is not None and stopped.lower() not in ("0", "false"),
        named_server_limit=(settings.lifecycle.named_server_limit_per_user or 0)
        if settings.spawner.named_servers
        else None,
        groups=request.app[GROUPS].groups_of(row.name),
    )


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.text() or "{}")
    except (ValueError, RecursionError, LookupError):  # too deep to follow; LookupError: an unknown charset
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def spawn_options(body: dict[str, Any]) -> dict[str, Any]:
    """The start options of a request body. JupyterHub 6 sends ``{"user_options": {...}, "display_name": ...}``;
    a body with neither key is the options themselves, as before JupyterHub 6."""
    if "user_options" not in body and "display_name" not in body:
        return body
    options = body.get("user_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("user_options must be a JSON object.")
    return options


def int_param(request: web.Request, key: str, default: int, maximum: int | None = None) -> int:
    value = require_whole_number(request.query.get(key), key, default=default, maximum=999_999_999)
    return min(value, maximum) if maximum is not None else value


@routes.get("/hub/api", name="api_root_bare")
@routes.get("/hub/api/", name="api_root")
async def api_root(request: web.Request) -> web.StreamResponse:
    from hub import __version__

    return web.json_response({"version": API_VERSION, "containerhub_version": __version__})


@routes.get("/hub/api/user", name="api_whoami")
async def whoami(request: web.Request) -> web.StreamResponse:
    requester = await api_requester(request)
    model = model_of(request, await request.app[USERS].row(requester.name))
    model["scopes"] = ["admin:users", "admin:servers"] if requester.admin else ["self"]
    return web.json_response(model)


@routes.get("/hub/api/users", name="api_users")
async def list_users(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    paginated = PAGINATION in request.headers.get("Accept", "")
    raw_state = request.query.get("state") or None
    if raw_state not in (None, "active", "inactive", "ready"):
        raise BadRequest("state must be one of active, inactive, ready.")
    state = cast(StateFilter | None, raw_state)
    offset = int_param(request, "offset", 0)
    limit = max(1, int_param(request, "limit", DEFAULT_LIMIT if paginated else 10**9, MAX_LIMIT if paginated else None))
    page = await request.app[USERS].page(
        name_filter=request.query.get("name_filter", ""), state=state, offset=offset, limit=limit
    )
    items = [model_of(request, row) for row in page.rows]
    if not paginated:
        return web.json_response(items)
    following = offset + len(items)
    next_page = None
    if following < page.total:
        url = request.url.update_query(offset=following, limit=limit)
        next_page = {"offset": following, "limit": limit, "url": str(url)}
    return web.json_response(
        {"items": items, "_pagination": {"offset": offset, "limit": limit, "total": page.total, "next": next_page}}
    )


@routes.post("/hub/api/users", name="api_add_users")
async def add_users(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    names = body.get("usernames")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise BadRequest('Send {"usernames": ["name", ...], "admin": false}.')
    created, existing = await request.app[ACCOUNTS].add(names, admin=bool(body.get("admin")))
    if not created:
        raise Conflict(f"All these users exist already: {', '.join(existing)}.")
    rows = [await request.app[USERS].row(name) for name in created]
    return web.json_response([model_of(request, row) for row in rows], status=201)


@routes.get("/hub/api/users/{name}", name="api_user")
async def get_user(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    return web.json_response(model_of(request, await request.app[USERS].row(name)))


@routes.post("/hub/api/users/{name}", name="api_add_user")
async def add_user(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    name = await request.app[ACCOUNTS].add_one(request.match_info["name"], admin=bool(body.get("admin")))
    return web.json_response(model_of(request, await request.app[USERS].row(name)), status=201)


@routes.patch("/hub/api/users/{name}", name="api_patch_user")
async def patch_user(request: web.Request) -> web.StreamResponse:
    requester = await require_admin(request)
    name = request.match_info["name"]
    body = await json_body(request)
    if "name" in body and body["name"] != name:
        raise BadRequest("Renaming users is not supported.")
    unknown = set(body) - {"name", "admin"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if "admin" in body:
        if not isinstance(body["admin"], bool):
            raise BadRequest("admin must be true or false.")
        if name == requester.name and not body["admin"]:
            raise BadRequest("You cannot take away your own admin rights.")
        await request.app[ACCOUNTS].set_admin(name, body["admin"])
    return web.json_response(model_of(request, await request.app[USERS].row(name)))


@routes.delete("/hub/api/users/{name}", name="api_delete_user")
async def delete_user(request: web.Request) -> web.StreamResponse:
    requester = await require_admin(request)
    name = request.match_info["name"]
    if name == requester.name:
        raise BadRequest("You cannot delete yourself.")
    await request.app[USERS].row(name)
    await request.app[SERVERS].delete_user(name, request.app[ACCOUNTS].delete)
    return web.Response(status=204)


@routes.post("/hub/api/users/{name}/server", name="api_start_server")
@routes.post("/hub/api/users/{name}/servers/")  # JupyterHub's other path of the default server (an empty name)
@routes.post("/hub/api/users/{name}/servers/{server}", name="api_start_named_server")
async def start_server(request: web.Request) -> web.StreamResponse:
    """201 once the server is ready, 202 while it is still starting (JupyterHub's answers)."""
    name, server = request.match_info["name"], request.match_info.get("server", "")
    requester = await require_manager_of(request, name)
    await request.app[USERS].row(name)
    settings = request.app[SETTINGS]
    servers = request.app[SERVERS]
    if server:
        if not settings.spawner.named_servers:
            raise BadRequest("Named servers are not enabled on this hub.")
        validate_server_name(server)
    view = await servers.view(name, server)
    if view is not None and view.state == ServerState.RUNNING and not servers.is_spawning(name, server):
        which = f"server {server!r} of {name}" if server else f"server of {name}"
        raise BadRequest(f"The {which} is already running.")
    body = spawn_options(await json_body(request))
    groups = request.app[GROUPS].groups_of(name)
    fallback = default_image(settings, groups, requester.admin)
    choice = body.get("image", fallback.name if fallback else settings.default_image_name)
    image = require_may_start(chosen_image(settings, choice), groups, requester.admin)
    # the body is JupyterHub's user_options: the image and the resources chosen (hub/resources.py)
    progress = await servers.start(name, image, server, user_options=body, admin=requester.admin)

    async def finished() -> None:
        async for _ in progress.follow():
            pass  # the stream ends when the start is ready or has failed

    try:
        await asyncio.wait_for(asyncio.shield(finished()), START_WAIT_SECONDS)
    except TimeoutError:
        return web.Response(status=202)
    last = progress.latest
    if last is not None and last.failed:
        raise HubError(last.message)
    return web.Response(status=201)


@routes.delete("/hub/api/users/{name}/server", name="api_stop_server")
@routes.delete("/hub/api/users/{name}/servers/")
@routes.delete("/hub/api/users/{name}/servers/{server}", name="api_stop_named_server")
async def stop_server(request: web.Request) -> web.StreamResponse:
    """Stop the server; ``{"remove": true}`` also deletes a named server (JupyterHub's body)."""
    name, server = request.match_info["name"], request.match_info.get("server", "")
    await require_manager_of(request, name)
    await request.app[USERS].row(name)
    servers = request.app[SERVERS]
    remove = (await json_body(request)).get("remove", False)
    if not isinstance(remove, bool):
        raise BadRequest("remove must be true or false.")
    if server:
        if not request.app[SETTINGS].spawner.named_servers:
            raise BadRequest("Named servers are not enabled on this hub.")
        if await servers.view(name, server) is None:
            raise NotFound(f"{name} has no server named {truncate(server)!r}.")
    elif remove:
        raise BadRequest("The default server cannot be deleted, only stopped.")
    if remove:
        await servers.delete_server(name, server)
    else:
        await servers.stop(name, server=server)
    return web.Response(status=204)
