"""Keep the database, Docker and the route files in agreement: at start-up and every few seconds.

- a running container of a running server is adopted (its route is rewritten if missing);
- a server whose container exited has crashed: its route goes, it is marked stopped, and the
  user is told why (out of memory, exit code, the last log lines);
- a server whose container is gone is marked stopped;
- a start or stop that a hub crash interrupted ends cleanly (container removed, server stopped);
- a route without a running server is removed;
- a container with this hub's labels that belongs to no known server is reported, and removed
  when ``lifecycle.unknown_containers`` says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import select

from hub import names
from hub.config import ImageSpec, Settings
from hub.errors import HubError
from hub.models import Server, ServerState, User, utcnow
from hub.servers import ServerManager, handle_of, route_of
from hub.spawner import ServerHandle, ServerInfo
from hub.tokens import aware

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 20
PARALLEL = 8


def crash_message(info: ServerInfo, image: ImageSpec | None, log_tail: str) -> str:
    if info.oom_killed:
        limit = f" (its limit is {image.mem_limit})" if image and image.mem_limit else ""
        message = f"Your server was stopped because it ran out of memory{limit}. Your files are kept."
    else:
        message = f"Your server stopped unexpectedly (exit code {info.exit_code}). Your files are kept."
    if log_tail.strip():
        message += f"\n\nLast lines of its log:\n{log_tail.rstrip()}"
    return message


def handle_from(info: ServerInfo) -> ServerHandle:
    return ServerHandle(info.container_id, info.container_name, "", "")


class Reconciler:
    def __init__(self, settings: Settings, servers: ServerManager) -> None:
        self.settings = settings
        self.servers = servers
        self._running = asyncio.Lock()

    async def run_once(self) -> None:
        async with self._running:
            await self._reconcile()

    async def _reconcile(self) -> None:
        spawner, proxy = self.servers.spawner, self.servers.proxy
        snapshot_at = utcnow()
        containers = {info.username: info for info in await spawner.list_servers()}
        routed = await proxy.list_routes()
        async with self.servers.sessions() as session:
            rows = (await session.execute(select(User).outerjoin(User.server))).scalars().all()
            records = {user.name: user.server for user in rows}
        gate = asyncio.Semaphore(PARALLEL)

        async def one(name: str) -> None:
            async with gate:
                try:
                    await self._check(name, containers.get(name), names.user_slug(name) in routed, snapshot_at)
                except HubError as exc:
                    log.warning("reconcile: %s: %s", name, exc.detail)
                except Exception:
                    log.exception("reconcile: %s", name)

        await asyncio.gather(*(one(name) for name in records))

        for name, info in containers.items():
            if name not in records:
                if self.settings.lifecycle.unknown_containers == "remove":
                    log.warning("removing container %s: it belongs to no user of this hub", info.container_name)
                    await spawner.stop(handle_from(info))
                else:
                    log.warning("container %s carries this hub's labels but belongs to no user it knows",
                                info.container_name)
        known = {names.user_slug(name) for name in records}  # their routes were checked under their locks
        for slug in routed - known:
            log.warning("removing route user-%s: no such user", slug)
            await proxy.delete_route(slug)

    async def _check(self, name: str, info: ServerInfo | None, routed: bool, snapshot_at: dt.datetime) -> None:
        servers = self.servers
        async with servers.lock(name):
            if servers.is_spawning(name):
                return
            async with servers.sessions() as session:  # the state now, under the user's lock
                server = (await session.execute(
                    select(Server).join(Server.owner).where(User.name == name))).scalar_one_or_none()
            started = aware(server.started) if server else None
            if started is not None and started >= snapshot_at:
                return  # started after Docker was asked: the container list does not know it yet
            state = server.state if server else ServerState.STOPPED
            image = self.settings.image(server.image_name) if server else None
            if state == ServerState.RUNNING and server is not None:
                if info is not None and info.running:
                    if not routed:
                        log.info("reconcile: adopting the running server of %s (route rewritten)", name)
                        await servers.proxy.add_route(route_of(name, server, image))
                    return
                if info is not None:
                    tail = await servers.spawner.logs(handle_from(info), LOG_TAIL_LINES)
                    message = crash_message(info, image, tail)
                    log.warning("server of %s exited (code %s, oom %s)", name, info.exit_code, info.oom_killed)
                else:
                    message = "Your server's container disappeared, so it was marked stopped. Your files are kept."
                    log.warning("server of %s is gone from Docker", name)
                await servers.proxy.delete_route(names.user_slug(name))
                if info is not None:
                    await servers.spawner.stop(handle_from(info))
                await servers.save(name, state=ServerState.STOPPED, url=None, container_id=None, error=message)
                return
            if state in (ServerState.STARTING, ServerState.STOPPING):
                log.warning("finishing the interrupted %s of %s's server", state.value, name)
                if info is not None:
                    await servers.spawner.stop(handle_from(info))
                elif server is not None and (server.container_id or server.container_name):
                    await servers.spawner.stop(handle_of(server))
                await servers.proxy.delete_route(names.user_slug(name))
                await servers.save(name, state=ServerState.STOPPED, url=None, container_id=None,
                                   error="The hub restarted while your server was starting or stopping. "
                                         "Start it again; your files are kept.")
                return
            if info is not None:  # a stopped server with a container left behind
                log.warning("removing leftover container %s of %s", info.container_name, name)
                await servers.spawner.stop(handle_from(info))
            if routed:
                await servers.proxy.delete_route(names.user_slug(name))

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
