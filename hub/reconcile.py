"""Keep the database, Docker and the route files in agreement: at start-up and every few seconds.

The reconciler only looks; every change is a step of the server manager (servers.py), which acts
only if the server is still as the reconciler saw it:

- a running server whose container runs is adopted (its route is rewritten if missing, or always
  at start-up, since route files are a projection of the database), and the GPUs its container
  carries (label ``hub.gpus``) are known as taken;
- a running server whose container exited has crashed (``record_crash``): its route goes, it is
  marked stopped, and the user is told why (out of memory, exit code, the last log lines);
- a running server whose container is gone is marked stopped the same way;
- a start or stop that a hub crash interrupted ends cleanly (``finish_interrupted``);
- a stopped server's leftover container or route is removed (``remove_leftovers``);
- every server of a user (the default one and named ones) is looked at on its own, by (user, server);
- a route without a server is removed, and a container with this hub's labels that belongs to no
  server is reported, and removed when ``lifecycle.unknown_containers`` says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import select

from hub import names
from hub.config import Settings
from hub.errors import HubError
from hub.models import Server, ServerState, User, utcnow
from hub.servers import Key, Seen, ServerManager, gpu_key, handle_from
from hub.spawner import ServerInfo
from hub.tokens import aware

log = logging.getLogger(__name__)
PARALLEL = 8


class Reconciler:
    def __init__(self, settings: Settings, servers: ServerManager) -> None:
        self.settings = settings
        self.servers = servers
        self._running = asyncio.Lock()

    async def run_once(self, rewrite_routes: bool = False) -> None:
        async with self._running:
            await self._reconcile(rewrite_routes)

    async def _reconcile(self, rewrite_routes: bool) -> None:
        servers = self.servers
        snapshot_at = utcnow()
        containers = {(info.username, info.server_name): info for info in await servers.spawner.list_servers()}
        routed = await servers.proxy.list_routes()
        async with servers.sessions() as session:
            rows = (
                await session.execute(
                    select(User.name, Server.name, Server.state, Server.started)
                    .select_from(User)
                    .outerjoin(User.servers)
                )
            ).all()
        records = {
            (name, server or ""): Seen(state or ServerState.STOPPED, aware(started))
            for name, server, state, started in rows
        }
        gate = asyncio.Semaphore(PARALLEL)

        async def one(key: Key, seen: Seen) -> None:
            async with gate:
                try:
                    slug = names.server_slug(*key)
                    await self._decide(key, seen, containers.get(key), slug in routed, snapshot_at, rewrite_routes)
                except HubError as exc:
                    log.warning("reconcile: %s: %s", names.server_label(*key), exc.detail)
                except Exception:
                    log.exception("reconcile: %s", names.server_label(*key))

        await asyncio.gather(*(one(key, seen) for key, seen in records.items()))

        for key, info in containers.items():
            if key not in records:
                if self.settings.lifecycle.unknown_containers == "remove":
                    log.warning("removing container %s: it belongs to no user of this hub", info.container_name)
                    await servers.spawner.stop(handle_from(info))
                else:
                    log.warning(
                        "container %s carries this hub's labels but belongs to no user it knows", info.container_name
                    )
        known = {names.server_slug(*key) for key in records}
        for slug in routed - known:
            log.warning("removing route user-%s: no such server", slug)
            await servers.proxy.delete_route(slug)

    async def _decide(
        self,
        key: Key,
        seen: Seen,
        info: ServerInfo | None,
        routed: bool,
        snapshot_at: dt.datetime,
        rewrite_routes: bool,
    ) -> None:
        name, server = key
        if self.servers.is_spawning(name, server):
            return
        if seen.started is not None and seen.started >= snapshot_at:
            return  # started after Docker was asked: the container list does not know it yet
        if seen.state == ServerState.RUNNING:
            if info is not None and info.running:
                if rewrite_routes or not routed:
                    await self.servers.adopt(name, seen, rewrite_route=rewrite_routes, server=server)
                if self.servers.gpus.holding(gpu_key(key)) != info.gpu_ids:
                    await self.servers.adopt_gpus(name, seen, info.gpu_ids, server=server)
                return
            await self.servers.record_crash(name, seen, info, server=server)
        elif seen.state in (ServerState.STARTING, ServerState.STOPPING):
            await self.servers.finish_interrupted(name, seen, info, server=server)
        elif info is not None or routed:
            await self.servers.remove_leftovers(name, seen, info, routed, server=server)

    async def run_periodically(self) -> None:
        interval = self.settings.lifecycle.reconcile_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except HubError as exc:
                log.warning("reconcile skipped: %s", exc.detail)
            except Exception:
                log.exception("reconcile failed")
