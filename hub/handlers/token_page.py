"""/hub/token: a user makes, lists and revokes their API tokens."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from hub.errors import BadRequest
from hub.handlers.login import require_user
from hub.i18n import N_
from hub.keys import TOKENS
from hub.parsing import whole_number
from hub.urls import url

routes = web.RouteTableDef()
EXPIRY_CHOICES = {"": None, "3600": 3600, "86400": 86400, "604800": 604800, "2592000": 2592000}


async def render(request: web.Request, name: str, new_token: str | None = None, status: int = 200) -> web.Response:
    tokens = await request.app[TOKENS].list(name)
    context = {"tokens": tokens, "new_token": new_token}
    return aiohttp_jinja2.render_template("token.html", request, context, status=status)


@routes.get("/hub/token", name="token_page")
async def token_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    return await render(request, user.name)


@routes.post("/hub/token", name="token_create")
async def create_token(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await request.post()
    expiry = str(form.get("expires_in", ""))
    if expiry not in EXPIRY_CHOICES:
        raise BadRequest(N_("Pick one of the offered expiry times."))
    note = str(form.get("note", "")).strip()[:200] or "Requested from the token page"
    _, token = await request.app[TOKENS].create(user.name, note, EXPIRY_CHOICES[expiry])
    return await render(request, user.name, new_token=token, status=201)


@routes.post("/hub/token/{token_id}/revoke", name="token_revoke")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    raw = request.match_info["token_id"]
    token_id = whole_number(raw)
    if token_id is None:
        raise BadRequest(N_("There is no such token."))
    await request.app[TOKENS].revoke(user.name, token_id)
    raise web.HTTPSeeOther(url(request, "token_page"))
