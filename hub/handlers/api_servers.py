"""REST API: one server's model, making and renaming named servers (JupyterHub 6), and reported activity.

Same permissions as the rest of the API: a user acts on their own servers, admins on everyone's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from hub.api_models import server_model
from hub.errors import BadRequest, NotFound
from hub.handlers.api_auth import require_manager_of
from hub.handlers.api_users import json_body, progress_url
from hub.image_choice import default_image
from hub.keys import ACTIVITY, GROUPS, SERVERS, SETTINGS, USERS
from hub.models import utcnow
from hub.names import truncate
from hub.users import ServerRow, UserRow

routes = web.RouteTableDef()
FUTURE_LIMIT = dt.timedelta(minutes=59)
"""Reported activity further ahead than this is refused, as JupyterHub refuses it; nearer, it counts as now."""
OPTIONS_AT_START = (
    "Options are chosen when the server starts: send them with POST /hub/api/users/{name}/servers/{server}."
)


def find_server(request: web.Request, row: UserRow, server: str) -> ServerRow:
    """The user's server of that name; the default one only once it was ever started (as in the user model)."""
    spawning = request.app[SERVERS].is_spawning(row.name, server)
    if server == "" and (row.image_name is not None or spawning):
        return row.default_server
    found = next((named for named in row.named if named.name == server), None) if server else None
    if found is None:
        raise NotFound(f"{row.name} has no server named {truncate(server)!r}.")
    return found


async def model_of(request: web.Request, name: str, server: str) -> dict[str, Any]:
    row = await request.app[USERS].row(name)
    found = find_server(request, row, server)
    return server_model(
        name,
        found,
        spawning=request.app[SERVERS].is_spawning(name, server),
        server_activity=request.app[ACTIVITY].server_latest(name, server),
        progress_url=progress_url(request, name, server),
    )


def check_display_name(body: dict[str, Any], name: str) -> None:
    """The hub keeps no display names: a server shows its name. One that differs is refused, not dropped."""
    display = body.get("display_name")
    if display not in (None, "", name):
        raise BadRequest("Servers have no display names here: a server is shown by its name.")


@routes.get("/hub/api/users/{name}/servers/", name="api_default_server")
@routes.get("/hub/api/users/{name}/servers/{server}", name="api_server")
async def get_server(request: web.Request) -> web.StreamResponse:
    name, server = request.match_info["name"], request.match_info.get("server", "")
    await require_manager_of(request, name)
    return web.json_response(await model_of(request, name, server))


@routes.put("/hub/api/users/{name}/servers/")
@routes.put("/hub/api/users/{name}/servers/{server}", name="api_create_server")
async def create_server(request: web.Request) -> web.StreamResponse:
    """A stopped named server (201); it starts with the options sent with its first start. The default server
    (an empty name) is a 409, as in JupyterHub: every user has one."""
    name, server = request.match_info["name"], request.match_info.get("server", "")
    requester = await require_manager_of(request, name)
    await request.app[USERS].row(name)
    body = await json_body(request)
    unknown = set(body) - {"display_name", "user_options"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if body.get("user_options"):
        raise BadRequest(OPTIONS_AT_START)
    check_display_name(body, server)
    settings = request.app[SETTINGS]
    image = default_image(settings, request.app[GROUPS].groups_of(name), requester.admin)
    if image is None:
        raise BadRequest(f"{name} may start none of the hub's images.")
    await request.app[SERVERS].create(name, server, image, admin=requester.admin)
    return web.json_response(await model_of(request, name, server), status=201)


@routes.patch("/hub/api/users/{name}/servers/")
@routes.patch("/hub/api/users/{name}/servers/{server}", name="api_rename_server")
async def rename_server(request: web.Request) -> web.StreamResponse:
    """``{"name": "new-name"}`` renames a stopped named server; its files and shares go with it. The default
    server cannot be renamed (JupyterHub would make a new default one; here it owns the account's files)."""
    name, server = request.match_info["name"], request.match_info.get("server", "")
    await require_manager_of(request, name)
    find_server(request, await request.app[USERS].row(name), server)  # a 404 first
    body = await json_body(request)
    if not body:
        raise BadRequest('Send at least one field to change, such as {"name": "new-name"}.')
    unknown = set(body) - {"name", "display_name", "user_options"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if "user_options" in body:
        raise BadRequest(OPTIONS_AT_START)
    new_name = body.get("name", server)
    if not isinstance(new_name, str):
        raise BadRequest("name must be a string.")
    check_display_name(body, new_name)
    if new_name != server:
        await request.app[SERVERS].rename(name, server, new_name)  # shares and activity follow (its listeners)
    return web.json_response(await model_of(request, name, new_name))


def parse_moment(raw: object, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 time of activity: without a zone it is UTC; in the future it counts as now."""
    if not isinstance(raw, str) or len(raw) > 64:
        raise BadRequest("last_activity must be an ISO 8601 time, such as 2026-05-01T12:00:00Z.")
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{truncate(raw)!r} is not an ISO 8601 time.") from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    if moment - now > FUTURE_LIMIT:
        raise BadRequest(f"Activity more than an hour in the future is refused: {truncate(raw)}.")
    return min(moment, now)


@routes.post("/hub/api/users/{name}/activity", name="api_user_activity")
async def report_activity(request: web.Request) -> web.StreamResponse:
    """JupyterHub's body: ``{"last_activity": time, "servers": {"<server>": {"last_activity": time}}}``.
    Activity only moves forward; it counts for the idle culler as requests through the hub do."""
    name = request.match_info["name"]
    await require_manager_of(request, name)
    row = await request.app[USERS].row(name)
    body = await json_body(request)
    now = utcnow()
    moment = parse_moment(body["last_activity"], now) if body.get("last_activity") else None
    servers = body.get("servers")
    if moment is None and not servers:
        raise BadRequest("Send last_activity, servers, or both.")
    shape = 'servers must look like {"<server name>": {"last_activity": "<time>"}}.'
    if servers is not None and not isinstance(servers, dict):
        raise BadRequest(shape)
    moments: dict[str, dt.datetime] = {}
    for server, info in (servers or {}).items():
        if not isinstance(info, dict) or "last_activity" not in info:
            raise BadRequest(shape)
        try:
            find_server(request, row, server)
        except NotFound:
            raise BadRequest(f"{name} has no server named {truncate(server)!r}.") from None
        moments[server] = parse_moment(info["last_activity"], now)
    request.app[ACTIVITY].report(name, moment, moments)
    return web.Response(status=200)
