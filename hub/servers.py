"""Starting and stopping users' servers: the only code that uses the spawner, the proxy and the database together."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select

from hub import names
from hub.config import ImageSpec, Settings
from hub.db import Sessionmaker, get_user
from hub.errors import HubError, LimitReached, SpawnError
from hub.metrics import HubMetrics
from hub.models import Server, ServerState, User, utcnow
from hub.progress import ProgressEvent, SpawnProgress
from hub.proxy import Proxy, Route
from hub.spawn_queue import SpawnQueue
from hub.spawner import ServerHandle, SpawnRequest, Spawner

log = logging.getLogger(__name__)


class DependencyGate(Protocol):
    def require_docker(self) -> None:
        """Raise ServiceUnavailable while Docker is away."""


@dataclass(frozen=True, slots=True)
class ServerView:
    """What pages need to know about a user's server."""

    state: ServerState
    image_name: str
    url: str | None
    started: dt.datetime | None
    error: str | None


def handle_of(server: Server) -> ServerHandle:
    return ServerHandle(server.container_id or "", server.container_name or "", server.volume_name or "", server.url or "")


def route_of(user: str, server: Server, image: ImageSpec | None) -> Route:
    return Route(
        username=user,
        slug=names.user_slug(user),
        prefix=names.user_prefix(user),
        target=server.url or "",
        token=server.route_secret,
        strip_prefix=bool(image and image.strip_prefix),
    )


class ServerManager:
    def __init__(self, settings: Settings, sessions: Sessionmaker, spawner: Spawner, proxy: Proxy,
                 metrics: HubMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.spawner = spawner
        self.proxy = proxy
        self._spawns: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, SpawnProgress] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.queue = SpawnQueue(settings.lifecycle.concurrent_spawns)
        self._capacity = asyncio.Lock()  # the running-server limit is checked and claimed in one step
        self.dependencies: DependencyGate | None = None

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def server_url(self, name: str, image: ImageSpec | None) -> str:
        default = image.default_url if image else "/"
        return names.user_prefix(name) + default.lstrip("/")

    def progress(self, name: str) -> SpawnProgress | None:
        return self._progress.get(name)

    def is_spawning(self, name: str) -> bool:
        task = self._spawns.get(name)
        return task is not None and not task.done()

    async def view(self, name: str) -> ServerView | None:
        async with self.sessions() as session:
            user = await get_user(session, name)
            if user is None or user.server is None:
                return None
            server = user.server
            return ServerView(server.state, server.image_name, server.url, server.started, server.error)

    # -- start -------------------------------------------------------------------------------
    async def start(self, name: str, image: ImageSpec) -> SpawnProgress:
        """Begin starting the user's server, or join the start in flight; returns at once."""
        async with self.lock(name):
            if self.is_spawning(name):
                return self._progress[name]
            progress = SpawnProgress()
            if self.dependencies is not None:
                self.dependencies.require_docker()
            async with self._capacity, self.sessions.begin() as session:
                await self._check_capacity(name)
                user = await get_user(session, name)
                if user is None:
                    raise HubError("Your user account does not exist any more.")
                server = user.server
                if server is not None and server.state == ServerState.RUNNING:
                    progress.emit(ProgressEvent(100, "Your server is already running.", ready=True,
                                                url=self.server_url(name, self.settings.image(server.image_name))))
                    return progress
                if server is None:
                    server = Server(image_name=image.name, route_secret="")
                    user.server = server
                server.image_name = image.name
                server.state = ServerState.STARTING
                server.route_secret = secrets.token_urlsafe(32)
                server.error = None
                server.container_id = server.container_name = server.url = None
                secret = server.route_secret
            self._progress[name] = progress
            progress.report(0, f"Starting your {image.title} server")
            self._spawns[name] = asyncio.create_task(self._spawn(name, image, secret, progress), name=f"spawn-{name}")
            return progress

    async def _check_capacity(self, name: str) -> None:
        limit = self.settings.lifecycle.max_running_servers
        if limit is None:
            return
        async with self.sessions() as session:
            busy = select(func.count(Server.id)).join(Server.owner).where(
                Server.state.in_((ServerState.STARTING, ServerState.RUNNING)), User.name != name)
            count = (await session.execute(busy)).scalar_one()
        if count >= limit:
            raise LimitReached(
                f"The hub is running its maximum of {limit} servers. Please try again later, "
                "or ask an admin to stop servers that are not in use.",
                f"{name} refused: {count} servers active, limit {limit}",
            )

    async def _spawn(self, name: str, image: ImageSpec, secret: str, progress: SpawnProgress) -> None:
        slug = names.user_slug(name)
        request = SpawnRequest(name, slug, image, names.user_prefix(name), secret)
        began = time.monotonic()
        handle: ServerHandle | None = None
        def place_in_line(place: int) -> None:
            progress.report(2, f"Waiting for a free slot: you are number {place} in line")

        try:
            async with self.queue.turn(place_in_line):
                handle = await self.spawner.start(request, progress.report)
                await self.save(name, container_id=handle.container_id, container_name=handle.container_name,
                                volume_name=handle.volume_name, url=handle.url)
                progress.report(85, "Adding the route to your server")
                await self.proxy.add_route(Route(name, slug, request.base_url, handle.url, secret, image.strip_prefix))
            await self.save(name, state=ServerState.RUNNING, started=utcnow(), last_activity=utcnow())
            elapsed = time.monotonic() - began
            if self.metrics:
                self.metrics.spawn_duration.observe(elapsed)
            log.info("server of %s ready in %.2fs (%s)", name, elapsed, handle.container_id[:12])
            progress.emit(ProgressEvent(100, "Your server is ready", ready=True, url=self.server_url(name, image)))
        except asyncio.CancelledError:
            await self._fail(name, handle, "The start of your server was interrupted.", progress)
            raise
        except HubError as exc:
            log.warning("start of %s's server failed: %s", name, exc.detail)
            message = exc.user_message
            if isinstance(exc, SpawnError) and exc.log_tail:
                message = f"{message}\n\nLast lines of its log:\n{exc.log_tail.rstrip()}"
            await self._fail(name, handle, message, progress)
        except Exception as exc:
            log.exception("start of %s's server failed unexpectedly", name)
            await self._fail(name, handle, f"Your server could not start because of an internal error ({type(exc).__name__}).", progress)

    async def _fail(self, name: str, handle: ServerHandle | None, message: str, progress: SpawnProgress) -> None:
        """Clean up after a failed start; the state and the final event are written whatever happens."""
        if self.metrics:
            self.metrics.spawn_failures.inc()
        try:
            await self.proxy.delete_route(names.user_slug(name))
            if handle is not None:
                await self.spawner.stop(handle)
        except Exception as exc:
            log.warning("cleanup after failed start of %s: %s", name, getattr(exc, "detail", exc))
        finally:
            progress.emit(ProgressEvent(100, message, failed=True))
            await self.save(name, state=ServerState.FAILED, error=message, url=None)

    async def save(self, name: str, **fields: object) -> None:
        async with self.sessions.begin() as session:
            user = await get_user(session, name)
            if user is None or user.server is None:
                return
            for key, value in fields.items():
                setattr(user.server, key, value)

    # -- stop --------------------------------------------------------------------------------
    async def stop(self, name: str, reason: str | None = None, only_if_started: dt.datetime | None = None) -> None:
        """Stop the user's server and keep its volume. Stopping a stopped server does nothing.

        ``reason`` is shown to the user on their home page (idle culling, crashes). With
        ``only_if_started``, nothing happens unless the server is still the one started then
        (the culler decided on an older look at it).

        The route goes first, so no request is sent to a container that is going away; if the
        container cannot be stopped (Docker away), the route comes back and the server stays usable.
        """
        async with self.lock(name):
            if only_if_started is not None:
                async with self.sessions() as session:
                    user = await get_user(session, name)
                    current = user.server if user else None
                if (self.is_spawning(name) or current is None or current.state != ServerState.RUNNING
                        or current.started != only_if_started):
                    return
            task = self._spawns.get(name)
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            async with self.sessions() as session:
                user = await get_user(session, name)
                server = user.server if user else None
                if server is None:
                    return
                handle, previous = handle_of(server), server.state
                route = route_of(name, server, self.settings.image(server.image_name)) if server.url else None
            await self.save(name, state=ServerState.STOPPING)
            await self.proxy.delete_route(names.user_slug(name))
            try:
                if handle.container_id or handle.container_name:
                    await self.spawner.stop(handle)
            except Exception as exc:
                await self.save(name, state=previous)
                if previous == ServerState.RUNNING and route is not None:
                    await self.proxy.add_route(route)
                if isinstance(exc, HubError):
                    raise
                log.exception("stopping the server of %s failed", name)
                raise HubError("Your server could not be stopped. Please try again in a minute.") from exc
            await self.save(name, state=ServerState.STOPPED, container_id=None, url=None, error=reason)
            self._progress.pop(name, None)
            log.info("stopped the server of %s", name)

    async def logs(self, name: str, lines: int) -> str:
        """The last lines of the user's container log ('' when there is no container)."""
        async with self.sessions() as session:
            user = await get_user(session, name)
            server = user.server if user else None
            if server is None or not (server.container_id or server.container_name):
                return ""
            handle = handle_of(server)
        return await self.spawner.logs(handle, lines)

    async def remove_data(self, name: str) -> None:
        """Delete the user's stored files (their volume). The server must be stopped."""
        await self.spawner.remove_data(names.user_slug(name))
        log.info("removed the files of %s", name)

    # -- start-up and shut-down ---------------------------------------------------------------
    async def shutdown(self, stop_servers: bool = False) -> None:
        """Abandon starts in flight cleanly; running servers keep running unless asked otherwise."""
        tasks = [task for task in self._spawns.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stop_servers:
            async with self.sessions() as session:
                running = (await session.execute(select(User.name).join(User.server).where(
                    Server.state == ServerState.RUNNING))).scalars().all()
            await asyncio.gather(*(self.stop(name) for name in running), return_exceptions=True)
