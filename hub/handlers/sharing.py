"""Pages for sharing: the owner's sharing page of a server, opening a server shared with you, accepting a
share link, and the admins' list of every share."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from hub.errors import BadRequest, Forbidden, NotFound
from hub.handlers.admin import require_admin_user
from hub.handlers.login import require_user
from hub.i18n import L_, LN_, N_, gettext_for
from hub.keys import SERVERS, SETTINGS, SHARING
from hub.names import server_label, server_prefix, validate_server_name
from hub.parsing import whole_number
from hub.security import SessionUser
from hub.share_relay import SHARE_COOKIE
from hub.sharing import ShareView, parse_until
from hub.urls import url

routes = web.RouteTableDef()


def share_page_url(request: web.Request, owner: str, server: str) -> str:
    if server:
        return url(request, "share_page_named", owner=owner, server=server)
    return url(request, "share_page", owner=owner)


def open_url(request: web.Request, owner: str, server: str) -> str:
    """The hub's link that opens a server shared with you (it sets the share marker cookie first)."""
    if server:
        return url(request, "open_shared_named", owner=owner, server=server)
    return url(request, "open_shared", owner=owner)


async def sharing_context(request: web.Request, name: str) -> dict[str, Any]:
    """What the home page shows of sharing: the servers shared with this person, with their Open links."""
    shared = await request.app[SHARING].shares(grantee=name)
    seen: dict[tuple[str, str], ShareView] = {}
    for share in shared:  # shared with the person and with one of their groups: listed once
        seen.setdefault((share.owner, share.server), share)
    return {
        "shared_with_me": list(seen.values()),
        "shared_open_urls": {key: open_url(request, *key) for key in seen},
    }


def server_of(request: web.Request) -> tuple[str, str]:
    owner, server = request.match_info["owner"], request.match_info.get("server", "")
    return owner, validate_server_name(server) if server else ""


async def require_owner(request: web.Request) -> tuple[SessionUser, str, str]:
    user = await require_user(request)
    owner, server = server_of(request)
    if user.name != owner:
        raise Forbidden(N_("Only the owner of a server can share it."), f"{user.name} tried to share {owner}'s server")
    if await request.app[SERVERS].view(owner, server) is None:
        raise NotFound(
            N_("Start this server once before you share it.")
            if not server
            else L_("You have no server %(server)r.", server=server)
        )
    return user, owner, server


async def render_share_page(request: web.Request, owner: str, server: str, new_link: str | None = None) -> web.Response:
    sharing = request.app[SHARING]
    session = await get_session(request)
    context = {
        "owner": owner,
        "server_name": server,
        "label": server_label(owner, server),
        "shares": await sharing.shares(owner=owner, server=server),
        "codes": await sharing.codes(owner, server),
        "action": share_page_url(request, owner, server),
        "new_link": new_link,
        "flash": session.pop("flash", None),
    }
    return aiohttp_jinja2.render_template("share.html", request, context)


@routes.get("/hub/share/{owner}", name="share_page")
@routes.get("/hub/share/{owner}/{server}", name="share_page_named")
async def share_page(request: web.Request) -> web.StreamResponse:
    _, owner, server = await require_owner(request)
    return await render_share_page(request, owner, server)


@routes.post("/hub/share/{owner}")
@routes.post("/hub/share/{owner}/{server}")
async def share_change(request: web.Request) -> web.StreamResponse:
    """One form, several buttons: ``action`` is grant, revoke, make-link or revoke-links."""
    _, owner, server = await require_owner(request)
    form = await request.post()
    action = str(form.get("action", ""))
    sharing = request.app[SHARING]
    kind = str(form.get("kind", "user"))
    name = str(form.get("name", "")).strip()
    who: dict[str, str] = {"group": name} if kind == "group" else {"user": name.lower()}
    session = await get_session(request)
    translate = gettext_for(request)  # the flash message in the page's language
    if action == "grant":
        if not name:
            raise BadRequest(N_("Give the name of a user or a group to share with."))
        share = await sharing.grant(owner, server, expires_at=parse_until(form.get("until")), **who)
        session["flash"] = {"message": translate(L_("Shared with %(who)s.", who=share.grantee)), "error": False}
    elif action == "revoke":
        await sharing.revoke(owner, server, **who)
        session["flash"] = {"message": translate(L_("%(name)s no longer has access.", name=name)), "error": False}
    elif action == "make-link":
        code, _ = await sharing.create_code(owner, server)
        accept = request.app.router["accept_share"].url_for().with_query(code=code)
        public = request.app[SETTINGS].hub.public_url.rstrip("/")
        return await render_share_page(request, owner, server, new_link=f"{public}{accept}")
    elif action == "revoke-links":
        count = await sharing.revoke_codes(owner, server)
        revoked = LN_("Revoked %(num)d share link.", "Revoked %(num)d share links.", count)
        session["flash"] = {"message": translate(revoked), "error": False}
    else:
        raise BadRequest(N_("Unknown sharing action."))
    raise web.HTTPSeeOther(share_page_url(request, owner, server))


@routes.get("/hub/shared/{owner}", name="open_shared")
@routes.get("/hub/shared/{owner}/{server}", name="open_shared_named")
async def open_shared(request: web.Request) -> web.StreamResponse:
    """Open a server shared with you: mark the browser (a cookie on that server's path only) so its live
    connections are relayed by the hub, then go to the server."""
    user = await require_user(request)
    owner, server = server_of(request)
    sharing = request.app[SHARING]
    if not sharing.may_use(user.name, owner, server):
        raise Forbidden(N_("This server is not shared with you."), f"{user.name} tried to open {owner}'s shared server")
    servers = request.app[SERVERS]
    view = await servers.view(owner, server)
    image = request.app[SETTINGS].image(view.image_name) if view else None
    response = web.HTTPFound(servers.server_url(owner, image, server))
    response.set_cookie(
        SHARE_COOKIE,
        "1",
        path=server_prefix(owner, server),
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].hub.public_url.startswith("https://"),
    )
    raise response


@routes.get("/hub/accept-share", name="accept_share")
async def accept_share_page(request: web.Request) -> web.StreamResponse:
    await require_user(request)
    code = request.query.get("code", "")
    info = await request.app[SHARING].code_info(code) if code else None
    if info is None:
        raise NotFound(N_("This share link has no code in it."))
    context = {"code": code, "info": info, "label": server_label(info.owner, info.server)}
    return aiohttp_jinja2.render_template("accept_share.html", request, context)


@routes.post("/hub/accept-share")
async def accept_share(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    code = str((await request.post()).get("code", ""))
    if not code:
        raise BadRequest(N_("This share link has no code in it."))
    share = await request.app[SHARING].accept_code(code, user.name)
    raise web.HTTPSeeOther(open_url(request, share.owner, share.server))


@routes.get("/hub/admin/shares", name="admin_shares")
async def admin_shares(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    session = await get_session(request)
    context = {"shares": await request.app[SHARING].shares(), "flash": session.pop("flash", None)}
    return aiohttp_jinja2.render_template("admin_shares.html", request, context)


@routes.post("/hub/admin/shares/revoke", name="admin_revoke_share")
async def admin_revoke_share(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    share_id = whole_number(str((await request.post()).get("id", "")))
    if share_id is None:
        raise BadRequest(N_("Name the share to revoke."))
    view = await request.app[SHARING].revoke_by_id(share_id)
    session = await get_session(request)
    label = server_label(view.owner, view.server)
    revoked = L_("Revoked the share of %(server)s with %(who)s.", server=label, who=view.grantee)
    session["flash"] = {"message": gettext_for(request)(revoked), "error": False}
    raise web.HTTPSeeOther(url(request, "admin_shares"))
