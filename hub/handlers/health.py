"""/hub/health: is the hub up, and can it reach Docker and Traefik right now."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub import __version__
from hub.keys import PROXY, SPAWNER

routes = web.RouteTableDef()


@routes.get("/hub/health", name="health")
async def health(request: web.Request) -> web.StreamResponse:
    docker_ok, traefik_ok = await asyncio.gather(request.app[SPAWNER].ping(), request.app[PROXY].ping())
    return web.json_response({"status": "ok", "version": __version__, "docker": docker_ok, "traefik": traefik_ok})
