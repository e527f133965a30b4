"""REST API: groups and their members, in JupyterHub's paths and shapes (admins only)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.errors import BadRequest
from hub.groups import GroupView, user_names
from hub.handlers.api_auth import require_admin
from hub.handlers.api_users import DEFAULT_LIMIT, MAX_LIMIT, PAGINATION, int_param, json_body
from hub.keys import GROUPS

routes = web.RouteTableDef()


def group_model(group: GroupView) -> dict[str, Any]:
    return {"kind": "group", "name": group.name, "users": group.users, "properties": {}, "roles": []}


def members_of(body: dict[str, Any], required: bool) -> list[str]:
    if "users" not in body and not required:
        return []
    return user_names(body.get("users"))


def only_fields(body: dict[str, Any], *allowed: str) -> None:
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")


@routes.get("/hub/api/groups", name="api_groups")
async def list_groups(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    paginated = PAGINATION in request.headers.get("Accept", "")
    offset = int_param(request, "offset", 0)
    limit = max(1, int_param(request, "limit", DEFAULT_LIMIT if paginated else 10**9, MAX_LIMIT if paginated else None))
    page = await request.app[GROUPS].page(offset=offset, limit=limit)
    items = [group_model(group) for group in page.groups]
    if not paginated:
        return web.json_response(items)
    following = offset + len(items)
    next_page = None
    if following < page.total:
        next_url = request.url.update_query(offset=following, limit=limit)
        next_page = {"offset": following, "limit": limit, "url": str(next_url)}
    return web.json_response(
        {"items": items, "_pagination": {"offset": offset, "limit": limit, "total": page.total, "next": next_page}}
    )


@routes.post("/hub/api/groups", name="api_add_groups")
async def add_groups(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    only_fields(body, "groups", "users")
    if "groups" not in body:
        raise BadRequest('Send {"groups": ["name", ...]} (and optionally "users": ["name", ...]).')
    created = await request.app[GROUPS].create(body["groups"], members_of(body, required=False))
    return web.json_response([group_model(group) for group in created], status=201)


@routes.get("/hub/api/groups/{name}", name="api_group")
async def get_group(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return web.json_response(group_model(await request.app[GROUPS].get(request.match_info["name"])))


@routes.post("/hub/api/groups/{name}", name="api_add_group")
async def add_group(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    only_fields(body, "users")
    created = await request.app[GROUPS].create([request.match_info["name"]], members_of(body, required=False))
    return web.json_response(group_model(created[0]), status=201)


@routes.delete("/hub/api/groups/{name}", name="api_delete_group")
async def delete_group(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    await request.app[GROUPS].delete(request.match_info["name"])
    return web.Response(status=204)


@routes.post("/hub/api/groups/{name}/users", name="api_add_group_users")
async def add_group_users(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    only_fields(body, "users")
    group = await request.app[GROUPS].add_users(request.match_info["name"], members_of(body, required=True))
    return web.json_response(group_model(group))


@routes.delete("/hub/api/groups/{name}/users", name="api_remove_group_users")
async def remove_group_users(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    body = await json_body(request)
    only_fields(body, "users")
    group = await request.app[GROUPS].remove_users(request.match_info["name"], members_of(body, required=True))
    return web.json_response(group_model(group))
