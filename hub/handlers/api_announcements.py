"""REST API: announcements. JupyterHub has none; these follow its style (JSON, tokens, admins change)."""

from __future__ import annotations

from aiohttp import web

from hub.announcements import ANNOUNCEMENTS, parse_end_time
from hub.errors import BadRequest, NotFound
from hub.handlers.api_auth import api_requester, require_admin
from hub.handlers.api_users import json_body
from hub.parsing import whole_number

routes = web.RouteTableDef()


@routes.get("/hub/api/announcements", name="api_announcements")
async def list_announcements(request: web.Request) -> web.StreamResponse:
    """The current announcements (ended ones are gone), for anyone logged in."""
    await api_requester(request)
    return web.json_response([item.as_json() for item in request.app[ANNOUNCEMENTS].current()])


@routes.post("/hub/api/announcements", name="api_add_announcement")
async def add_announcement(request: web.Request) -> web.StreamResponse:
    admin = await require_admin(request)
    body = await json_body(request)
    unknown = set(body) - {"text", "ends_at"}
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}; send text and, if it ends, ends_at.")
    if "text" not in body:
        raise BadRequest('Send {"text": "...", "ends_at": "2026-05-01T18:00:00Z" or null}.')
    made = await request.app[ANNOUNCEMENTS].add(body["text"], parse_end_time(body.get("ends_at")), admin.name)
    return web.json_response(made.as_json(), status=201)


@routes.delete("/hub/api/announcements/{id}", name="api_delete_announcement")
async def delete_announcement(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    ident = whole_number(request.match_info["id"])
    if ident is None:
        raise NotFound(f"There is no announcement {request.match_info['id'][:20]!r}.")
    await request.app[ANNOUNCEMENTS].remove(ident)
    return web.Response(status=204)
