"""REST API: a user's API tokens."""

from __future__ import annotations

from aiohttp import web

from hub.api_models import parse_token_id, token_model
from hub.errors import BadRequest, Forbidden, NotFound
from hub.handlers.api_auth import require_manager_of
from hub.handlers.api_users import json_body
from hub.keys import SETTINGS, TOKENS, USERS

routes = web.RouteTableDef()
MAX_NOTE = 200
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600


def token_id_of(request: web.Request) -> int:
    token_id = parse_token_id(request.match_info["token_id"])
    if token_id is None:
        raise NotFound("There is no such token.")
    return token_id


@routes.get("/hub/api/users/{name}/tokens", name="api_tokens")
async def list_tokens(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    await request.app[USERS].row(name)
    tokens = await request.app[TOKENS].list(name)
    return web.json_response({"api_tokens": [token_model(token) for token in tokens]})


@routes.post("/hub/api/users/{name}/tokens", name="api_create_token")
async def create_token(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    requester = await require_manager_of(request, name)
    if requester.name != name and not request.app[SETTINGS].auth.admin_access:
        # A token for another user opens that user's server: only with admin_access.
        raise Forbidden(f"Only {name} can make tokens for {name} (auth.admin_access is off).")
    body = await json_body(request)
    note = body.get("note") or "Requested via API"
    expires_in = body.get("expires_in")
    if type(expires_in) is int and expires_in == 0:
        expires_in = None  # JupyterHub's: null or 0 is a token that does not expire
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadRequest(f"note must be text of at most {MAX_NOTE} characters.")
    if expires_in is not None and (
        not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 0 < expires_in <= MAX_EXPIRES_IN
    ):
        raise BadRequest(
            f"expires_in must be a number of seconds from 1 to {MAX_EXPIRES_IN} (ten years), or 0 for no expiry."
        )
    view, token = await request.app[TOKENS].create(name, note, expires_in)
    return web.json_response({**token_model(view), "token": token}, status=201)


@routes.get("/hub/api/users/{name}/tokens/{token_id}", name="api_token")
async def get_token(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    return web.json_response(token_model(await request.app[TOKENS].get(name, token_id_of(request))))


@routes.delete("/hub/api/users/{name}/tokens/{token_id}", name="api_revoke_token")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await require_manager_of(request, name)
    await request.app[TOKENS].revoke(name, token_id_of(request))
    return web.Response(status=204)
