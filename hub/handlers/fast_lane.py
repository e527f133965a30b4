"""The fast lane's document for Traefik's HTTP provider (hub/fast_lane.py).

Only Traefik's provider, calling the hub directly, gets it. A request that came through Traefik's entry point
carries the forwarding headers Traefik adds to every request it passes on, and gets a 404: the document names
every user whose server started lately, and the addresses of their containers. A poll that would get nothing
new is held until the lane changes, for at most a second (hub/fast_lane.py); the poller is its connection.
"""

from __future__ import annotations

from aiohttp import web

from hub.keys import PROXY

routes = web.RouteTableDef()

PROXIED_MARKS = ("X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip")


@routes.get("/hub/traefik-fast-lane", name="traefik_fast_lane")
async def fast_lane(request: web.Request) -> web.Response:
    if any(mark in request.headers for mark in PROXIED_MARKS):
        raise web.HTTPNotFound()
    poller = request.transport.get_extra_info("peername") if request.transport is not None else None
    document = await request.app[PROXY].fast_lane_poll(poller or request.remote)
    return web.Response(body=document, content_type="application/json")
