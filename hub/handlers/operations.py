"""Operations endpoints: /hub/health (hub, Docker, Traefik, free disk) and /hub/metrics (Prometheus, admins only)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import func, select

from hub import __version__
from hub.disk import DiskWatch, measure_all
from hub.handlers.api_auth import require_admin
from hub.keys import METRICS, PROXY, SESSIONS, SETTINGS, SPAWNER
from hub.metrics import CONTENT_TYPE
from hub.models import Server, ServerState, User
from hub.spawner import Spawner

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


DISK_WATCH = DiskWatch()
"""Logs low-disk warnings found by health checks, at most hourly per disk."""


async def storage_problems(spawner: Spawner) -> list[str]:
    """Size limits Docker cannot enforce (a spawner that has such settings says so; checked once)."""
    check = getattr(spawner, "storage_problems", None)
    if check is None:
        return []
    try:
        problems: list[str] = await check()
    except Exception as exc:  # Docker went away meanwhile: the docker field says so
        log.warning("could not check the storage limits: %s", getattr(exc, "detail", exc))
        return []
    return problems


def wants_text(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.query.get("format") == "text" or ("text/plain" in accept and "json" not in accept)


@routes.get("/hub/health", name="health")
async def health(request: web.Request) -> web.StreamResponse:
    """ok, warning (a disk nearly full, a size limit Docker cannot enforce) or degraded (Docker or Traefik away);
    JSON, or plain text with ?format=text."""
    (docker_ok, traefik_ok), disks = await asyncio.gather(
        asyncio.gather(request.app[SPAWNER].ping(), request.app[PROXY].ping()),
        asyncio.to_thread(measure_all, request.app[SETTINGS].hub),
    )
    DISK_WATCH.note(disks)
    warnings = [disk.warning for disk in disks if disk.warning]
    if docker_ok:
        warnings += await storage_problems(request.app[SPAWNER])
    status = "degraded" if not (docker_ok and traefik_ok) else "warning" if warnings else "ok"
    if wants_text(request):
        lines = [
            f"status: {status}",
            f"version: {__version__}",
            f"docker: {'reachable' if docker_ok else 'NOT reachable'}",
            f"traefik: {'reachable' if traefik_ok else 'NOT reachable'}",
            *(disk.as_text() for disk in disks),
            *(f"WARNING: {warning}" for warning in warnings),
        ]
        return web.Response(text="\n".join(lines) + "\n")
    return web.json_response(
        {
            "status": status,
            "version": __version__,
            "docker": docker_ok,
            "traefik": traefik_ok,
            "disks": [disk.as_json() for disk in disks],
            "warnings": warnings,
        }
    )


@routes.get("/hub/metrics", name="metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    hub_metrics = request.app[METRICS]
    async with request.app[SESSIONS]() as session:
        hub_metrics.users.set((await session.execute(select(func.count(User.id)))).scalar_one())
        running = select(func.count(Server.id)).where(Server.state == ServerState.RUNNING)
        hub_metrics.running_servers.set((await session.execute(running)).scalar_one())
    return web.Response(body=hub_metrics.render(), headers={"Content-Type": CONTENT_TYPE})
