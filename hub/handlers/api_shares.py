"""REST API: shares and share codes, in JupyterHub 5's paths and shapes.

The owner shares; the owner and admins list and revoke; a person lists (and leaves) what is shared with
them. Nobody, admins included, grants access to another person's server: that would get around
``auth.admin_access``. The default server is ``/hub/api/shares/{user}/`` (an empty server name).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.api_models import iso
from hub.errors import BadRequest, Forbidden, NotFound
from hub.handlers.api_auth import Requester, api_requester, require_admin, require_manager_of
from hub.handlers.api_users import DEFAULT_LIMIT, MAX_LIMIT, int_param, json_body
from hub.keys import GROUPS, SERVERS, SHARING, USERS
from hub.names import server_prefix, truncate, validate_server_name
from hub.parsing import whole_number
from hub.sharing import CODE_DEFAULT_SECONDS, CodeView, ShareView, access_scope, parse_until

routes = web.RouteTableDef()


def server_part(owner: str, server: str, ready: bool) -> dict[str, Any]:
    return {"name": server, "user": {"name": owner}, "url": server_prefix(owner, server), "ready": ready}


def share_model(share: ShareView) -> dict[str, Any]:
    return {
        "server": server_part(share.owner, share.server, share.ready),
        "scopes": [access_scope(share.owner, share.server)],
        "user": {"name": share.user} if share.user else None,
        "group": {"name": share.group} if share.group else None,
        "kind": "group" if share.group else "user",
        "created_at": iso(share.created),
        "expires_at": iso(share.expires_at),
    }


def code_model(code: CodeView) -> dict[str, Any]:
    return {
        "server": server_part(code.owner, code.server, code.ready),
        "scopes": [access_scope(code.owner, code.server)],
        "id": f"sc_{code.id}",
        "created_at": iso(code.created),
        "expires_at": iso(code.expires_at),
        "exchange_count": code.exchange_count,
        "last_exchanged_at": iso(code.last_exchanged_at),
    }


def paginated(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """JupyterHub's shares lists are always paginated: ``items`` and ``_pagination``."""
    offset = int_param(request, "offset", 0)
    limit = max(1, int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT))
    page = items[offset : offset + limit]
    following = offset + len(page)
    next_page = None
    if following < len(items):
        next_page = {"offset": following, "limit": limit, "url": str(request.url.update_query(offset=following))}
    pagination = {"offset": offset, "limit": limit, "total": len(items), "next": next_page}
    return web.json_response({"items": page, "_pagination": pagination})


def target(request: web.Request, owner_key: str = "user") -> tuple[str, str]:
    owner, server = request.match_info[owner_key], request.match_info.get("server", "")
    return owner, validate_server_name(server) if server else ""


async def require_owner(request: web.Request, owner: str) -> Requester:
    requester = await api_requester(request)
    if requester.name != owner:
        raise Forbidden("Only the owner of a server can share it.")
    return requester


def grantee(body: dict[str, Any]) -> dict[str, str]:
    """``{"user": name}`` or ``{"group": name}`` from a body that names exactly one of them."""
    user, group = body.get("user"), body.get("group")
    if (user is None) == (group is None):
        raise BadRequest("Specify exactly one of `user` or `group`.")
    value = user if user is not None else group
    if not isinstance(value, str) or not value:
        raise BadRequest("`user` or `group` must be a name.")
    return {"user": value} if user is not None else {"group": value}


def check_scopes(body: dict[str, Any], owner: str, server: str) -> None:
    scopes = body.get("scopes")
    if scopes in (None, []):
        return
    if not isinstance(scopes, list) or any(scope != access_scope(owner, server) for scope in scopes):
        raise BadRequest(f"The only scope a share can hold is {access_scope(owner, server)!r}.")


def only_fields(body: dict[str, Any], *allowed: str) -> None:
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")


@routes.get("/hub/api/shares/{user}", name="api_shares_of_owner")
async def shares_of_owner(request: web.Request) -> web.StreamResponse:
    owner = request.match_info["user"]
    await require_manager_of(request, owner)
    await request.app[USERS].row(owner)  # a 404 for a user who does not exist, as JupyterHub answers
    return paginated(request, [share_model(share) for share in await request.app[SHARING].shares(owner=owner)])


@routes.get("/hub/api/shares/{user}/", name="api_shares_default")
@routes.get("/hub/api/shares/{user}/{server}", name="api_shares")
async def shares_of_server(request: web.Request) -> web.StreamResponse:
    owner, server = target(request)
    await require_manager_of(request, owner)
    sharing = request.app[SHARING]
    await sharing.codes(owner, server)  # a 404 for a server that does not exist
    return paginated(request, [share_model(share) for share in await sharing.shares(owner=owner, server=server)])


@routes.post("/hub/api/shares/{user}/")
@routes.post("/hub/api/shares/{user}/{server}")
async def grant_share(request: web.Request) -> web.StreamResponse:
    owner, server = target(request)
    await require_owner(request, owner)
    body = await json_body(request)
    only_fields(body, "user", "group", "scopes", "expires_at")
    check_scopes(body, owner, server)
    share = await request.app[SHARING].grant(
        owner, server, expires_at=parse_until(body.get("expires_at")), **grantee(body)
    )
    return web.json_response(share_model(share))


@routes.patch("/hub/api/shares/{user}/")
@routes.patch("/hub/api/shares/{user}/{server}")
async def revoke_share(request: web.Request) -> web.StreamResponse:
    """JupyterHub's revocation: the share holds one scope only, so any revocation ends it (``{}``)."""
    owner, server = target(request)
    await require_manager_of(request, owner)
    body = await json_body(request)
    only_fields(body, "user", "group", "scopes")
    check_scopes(body, owner, server)
    await request.app[SHARING].revoke(owner, server, **grantee(body))
    return web.json_response({})


@routes.delete("/hub/api/shares/{user}/")
@routes.delete("/hub/api/shares/{user}/{server}")
async def revoke_all_shares(request: web.Request) -> web.StreamResponse:
    owner, server = target(request)
    await require_manager_of(request, owner)
    await request.app[SHARING].revoke_all(owner, server)
    return web.Response(status=204)


@routes.get("/hub/api/users/{name}/shared", name="api_shared_with")
async def shared_with(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    await request.app[USERS].row(name)  # a 404 for a user who does not exist, as JupyterHub answers
    return paginated(request, [share_model(share) for share in await request.app[SHARING].shares(grantee=name)])


async def direct_share(request: web.Request) -> tuple[str, str, str, ShareView]:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    owner, server = target(request, "owner")
    found = [s for s in await request.app[SHARING].shares(owner=owner, server=server) if s.user == name]
    if not found:
        raise NotFound(f"{name} has no share of {owner}'s server {server!r}.")
    return name, owner, server, found[0]


@routes.get("/hub/api/users/{name}/shared/{owner}/")
@routes.get("/hub/api/users/{name}/shared/{owner}/{server}")
async def shared_with_one(request: web.Request) -> web.StreamResponse:
    *_, share = await direct_share(request)
    return web.json_response(share_model(share))


@routes.delete("/hub/api/users/{name}/shared/{owner}/")
@routes.delete("/hub/api/users/{name}/shared/{owner}/{server}")
async def leave_share(request: web.Request) -> web.StreamResponse:
    """The person gives up a share of their own (not one of a group they are in)."""
    name, owner, server, _ = await direct_share(request)
    await request.app[SHARING].revoke(owner, server, user=name)
    return web.Response(status=204)


@routes.post("/hub/api/share-codes/{user}/")
@routes.post("/hub/api/share-codes/{user}/{server}")
async def make_code(request: web.Request) -> web.StreamResponse:
    owner, server = target(request)
    await require_owner(request, owner)
    body = await json_body(request)
    only_fields(body, "scopes", "expires_in")
    check_scopes(body, owner, server)
    expires_in = body.get("expires_in", CODE_DEFAULT_SECONDS)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool):
        raise BadRequest("expires_in must be a whole number of seconds.")
    code, view = await request.app[SHARING].create_code(owner, server, expires_in)
    accept = request.app.router["accept_share"].url_for().with_query(code=code)
    return web.json_response({**code_model(view), "code": code, "accept_url": str(accept)})


@routes.get("/hub/api/share-codes/{user}/")
@routes.get("/hub/api/share-codes/{user}/{server}")
async def list_codes(request: web.Request) -> web.StreamResponse:
    owner, server = target(request)
    await require_manager_of(request, owner)
    return paginated(request, [code_model(code) for code in await request.app[SHARING].codes(owner, server)])


@routes.get("/hub/api/share-codes/{user}", name="api_share_codes_of_owner")
async def codes_of_owner(request: web.Request) -> web.StreamResponse:
    """The share codes of all the owner's servers, oldest first (owner or admin)."""
    owner = request.match_info["user"]
    await require_manager_of(request, owner)
    await request.app[USERS].row(owner)  # a 404 for a user who does not exist
    sharing = request.app[SHARING]
    codes = [code for view in await request.app[SERVERS].views(owner) for code in await sharing.codes(owner, view.name)]
    return paginated(request, [code_model(code) for code in sorted(codes, key=lambda code: code.id)])


async def group_share(request: web.Request) -> tuple[str, str, str, ShareView]:
    """The share of the group named in the path for the server named there (admins only, as in JupyterHub)."""
    await require_admin(request)
    group = request.match_info["name"]
    await request.app[GROUPS].get(group)  # a 404 for a group that does not exist
    owner, server = target(request, "owner")
    found = [s for s in await request.app[SHARING].shares(owner=owner, server=server) if s.group == group]
    if not found:
        raise NotFound(f"The group {truncate(group)} has no share of {truncate(owner)}'s server {server!r}.")
    return group, owner, server, found[0]


@routes.get("/hub/api/groups/{name}/shared", name="api_shared_with_group")
async def shared_with_group(request: web.Request) -> web.StreamResponse:
    """What is shared with a group (admins only: JupyterHub gives users no scope on their groups' shares)."""
    await require_admin(request)
    group = request.match_info["name"]
    await request.app[GROUPS].get(group)
    shares = [share for share in await request.app[SHARING].shares() if share.group == group]
    return paginated(request, [share_model(share) for share in shares])


@routes.get("/hub/api/groups/{name}/shared/{owner}/")
@routes.get("/hub/api/groups/{name}/shared/{owner}/{server}")
async def shared_with_group_one(request: web.Request) -> web.StreamResponse:
    *_, share = await group_share(request)
    return web.json_response(share_model(share))


@routes.delete("/hub/api/groups/{name}/shared/{owner}/")
@routes.delete("/hub/api/groups/{name}/shared/{owner}/{server}")
async def group_leaves_share(request: web.Request) -> web.StreamResponse:
    """The group gives up the share: its members lose the access it gave at once."""
    group, owner, server, _ = await group_share(request)
    await request.app[SHARING].revoke(owner, server, group=group)
    return web.Response(status=204)


@routes.delete("/hub/api/share-codes/{user}/")
@routes.delete("/hub/api/share-codes/{user}/{server}")
async def revoke_codes(request: web.Request) -> web.StreamResponse:
    """All the server's codes, or one: ``?code=...`` or ``?id=sc_N``."""
    owner, server = target(request)
    await require_manager_of(request, owner)
    raw_id = request.query.get("id")
    code_id = whole_number(raw_id.removeprefix("sc_")) if raw_id is not None else None
    if raw_id is not None and code_id is None:
        raise BadRequest("id must look like sc_123.")
    await request.app[SHARING].revoke_codes(owner, server, code=request.query.get("code"), code_id=code_id)
    return web.Response(status=204)
