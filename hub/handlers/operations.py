"""Operations endpoints: /hub/health (hub, Docker, Traefik) and /hub/metrics (Prometheus, admins only)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import func, select

from hub import __version__
from hub.handlers.api_auth import require_admin
from hub.keys import METRICS, PROXY, SESSIONS, SPAWNER
from hub.metrics import CONTENT_TYPE
from hub.models import Server, ServerState, User

routes = web.RouteTableDef()


@routes.get("/hub/health", name="health")
async def health(request: web.Request) -> web.StreamResponse:
    docker_ok, traefik_ok = await asyncio.gather(request.app[SPAWNER].ping(), request.app[PROXY].ping())
    status = "ok" if docker_ok and traefik_ok else "degraded"
    return web.json_response({"status": status, "version": __version__, "docker": docker_ok, "traefik": traefik_ok})


@routes.get("/hub/metrics", name="metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    hub_metrics = request.app[METRICS]
    async with request.app[SESSIONS]() as session:
        hub_metrics.users.set((await session.execute(select(func.count(User.id)))).scalar_one())
        running = select(func.count(Server.id)).where(Server.state == ServerState.RUNNING)
        hub_metrics.running_servers.set((await session.execute(running)).scalar_one())
    return web.Response(body=hub_metrics.render(), headers={"Content-Type": CONTENT_TYPE})
