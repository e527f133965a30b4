"""/hub/share-relay/user/<owner>/[<server>/]...: a shared server's WebSockets, relayed by the hub.

Traefik sends a WebSocket upgrade here (hub/traefik.py) when it carries the share marker cookie and forward
auth (mode ``share``) let it through, adding a signed ticket that names the person, owner and server. The
relay trusts nothing else: the ticket must verify, the session cookie must be the same person's, the path
must lie under that server's prefix, and the person must still be allowed to use the server. Then it opens
its own WebSocket to the server with the server's token and copies messages both ways until either side
closes or the access ends (hub/share_relay.py closes it).
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from aiohttp_session import get_session

from hub.handlers.forward_auth import cookies_without_session, is_under, normalized_path
from hub.keys import ACCOUNTS, SERVERS, SETTINGS, SHARE_RELAYS, SHARE_TICKETS
from hub.models import ServerState
from hub.names import server_prefix, truncate
from hub.security import session_user
from hub.share_relay import RELAY_PREFIX, SHARE_COOKIE, SHARE_TICKET_HEADER, Relay

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_MESSAGE_BYTES = 64 * 1024**2
"""Largest WebSocket message relayed (Jupyter's own limit is 10 MiB): one huge frame cannot exhaust the hub."""
MAX_RELAYS_PER_PERSON = 32
"""Open relays one person may hold to one shared server (a few browser tabs each need a handful)."""


def without_share_cookie(header: str) -> str:
    return "; ".join(part.strip() for part in header.split(";") if part.split("=", 1)[0].strip() != SHARE_COOKIE)


@routes.get(RELAY_PREFIX + "/{tail:.*}", name="share_relay")
async def relay(request: web.Request) -> web.StreamResponse:
    ticket = request.app[SHARE_TICKETS].verify(request.headers.get(SHARE_TICKET_HEADER))
    if ticket is None:
        raise web.HTTPForbidden(text="Open the shared server from the hub's home page.\n")
    user = session_user(await get_session(request), request.app[ACCOUNTS])
    if user is None or user.name != ticket.user:
        raise web.HTTPForbidden(text="Log in to the hub first.\n")
    raw_path = request.rel_url.raw_path.removeprefix(RELAY_PREFIX)
    if not raw_path.startswith("/") or not is_under(normalized_path(raw_path), ticket.owner, ticket.server):
        raise web.HTTPForbidden(text="This address is not part of the shared server.\n")
    relays = request.app[SHARE_RELAYS]
    if not relays.may_reach(ticket.user, ticket.owner, ticket.server):
        raise web.HTTPForbidden(text="This server is no longer shared with you.\n")
    if relays.count_of(ticket.user, ticket.owner, ticket.server) >= MAX_RELAYS_PER_PERSON:
        raise web.HTTPTooManyRequests(text="Too many connections to this shared server are open. Close some tabs.\n")
    servers = request.app[SERVERS]
    view = await servers.view(ticket.owner, ticket.server)
    secret = servers.route_secret(ticket.owner, ticket.server)
    if view is None or view.state != ServerState.RUNNING or not view.url or secret is None:
        raise web.HTTPServiceUnavailable(text="This server is not running.\n")
    image = request.app[SETTINGS].image(view.image_name)
    target = raw_path
    if image is not None and image.strip_prefix:
        target = "/" + raw_path.removeprefix(server_prefix(ticket.owner, ticket.server)).lstrip("/")
    query = request.rel_url.raw_query_string
    upstream = "ws" + view.url.removeprefix("http").rstrip("/") + target + (f"?{query}" if query else "")
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    protocols = tuple(part.strip() for part in offered.split(",") if part.strip())
    if not web.WebSocketResponse(protocols=protocols).can_prepare(request).ok:
        raise web.HTTPBadRequest(text="Only WebSocket connections are relayed here.\n")
    cookies = without_share_cookie(cookies_without_session(request.headers.get("Cookie", "")))
    headers = {"Authorization": f"token {secret}", **({"Cookie": cookies} if cookies else {})}
    try:
        up = await relays.http().ws_connect(
            upstream,
            protocols=protocols,
            headers=headers,
            max_msg_size=MAX_MESSAGE_BYTES,
            autoping=True,
            heartbeat=None,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10),
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("relay of %s to %s/%s could not connect: %s", ticket.user, ticket.owner, ticket.server, exc)
        raise web.HTTPBadGateway(text="The shared server did not accept the connection.\n") from None
    protocol = (up.protocol,) if up.protocol else ()
    down = web.WebSocketResponse(protocols=protocol, max_msg_size=MAX_MESSAGE_BYTES, autoping=True)
    try:
        await down.prepare(request)
    except Exception:
        await up.close()
        raise
    log.info("relaying a WebSocket of %s to %s", ticket.user, truncate(raw_path, 80))
    await relays.run(Relay(ticket, down, up))
    return down
