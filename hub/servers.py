"""Users' servers: the one owner of their state, and the only code that uses the spawner, the proxy and
the database together.

Every change of a server's state is a named step below (start, stop, cull, adopt, record a crash,
finish an interrupted start or stop, remove leftovers, delete the user); the reconciler and the
culler only observe and then call these steps. The states and the allowed changes are drawn in
server_states.py. Steps for one user run one at a time (a lock per user), and a step started from
an observation does nothing when the server changed since (``Seen``).

The server's secret token lives in the database and in memory: forward auth hands it to Traefik
with each request it allows (``route_secret``), so it is in no file Traefik reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select

from hub import names, server_states
from hub.auth_state import AuthStateBox
from hub.config import ImageSpec, Settings
from hub.db import Sessionmaker, get_user
from hub.errors import Conflict, HubError, LimitReached, NotFound, SpawnError
from hub.metrics import HubMetrics
from hub.models import Server, ServerState, User, utcnow
from hub.progress import ProgressEvent, SpawnProgress
from hub.proxy import Proxy, Route
from hub.spawn_queue import SpawnQueue
from hub.spawner import ServerHandle, ServerInfo, Spawner, SpawnRequest
from hub.tokens import aware

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 20


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
    error_log: str | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """What an observer saw of a server; a step acting on it does nothing if the server changed since."""

    state: ServerState
    started: dt.datetime | None

    def matches(self, server: Server | None) -> bool:
        return server is not None and server.state == self.state and aware(server.started) == aware(self.started)


def handle_of(server: Server) -> ServerHandle:
    return ServerHandle(
        server.container_id or "", server.container_name or "", server.volume_name or "", server.url or ""
    )


def handle_from(info: ServerInfo) -> ServerHandle:
    return ServerHandle(info.container_id, info.container_name, "", "")


def route_of(user: str, server: Server, image: ImageSpec | None) -> Route:
    return Route(
        username=user,
        slug=names.user_slug(user),
        prefix=names.user_prefix(user),
        target=server.url or "",
        strip_prefix=bool(image and image.strip_prefix),
    )


def failure_text(message: str, log_tail: str | None) -> str:
    """A failure as one text (the progress stream has one message field): the reason, then the log lines."""
    return f"{message}\n\nLast lines of its log:\n{log_tail.rstrip()}" if log_tail else message


def crash_message(info: ServerInfo | None, image: ImageSpec | None) -> str:
    if info is None:
        return "Your server's container disappeared, so it was marked stopped. Your files are kept."
    if info.oom_killed:
        limit = f" (its limit is {image.mem_limit})" if image and image.mem_limit else ""
        return f"Your server was stopped because it ran out of memory{limit}. Your files are kept."
    return f"Your server stopped unexpectedly (exit code {info.exit_code}). Your files are kept."


class ServerManager:
    def __init__(
        self,
        settings: Settings,
        sessions: Sessionmaker,
        spawner: Spawner,
        proxy: Proxy,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.auth_state: AuthStateBox | None = None
        """Opens what login methods hand to servers; set by the app."""
        self.sessions = sessions
        self.spawner = spawner
        self.proxy = proxy
        self._spawns: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, SpawnProgress] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._secrets: dict[str, str] = {}
        self.queue = SpawnQueue(settings.lifecycle.concurrent_spawns)
        self._capacity = asyncio.Lock()  # the running-server limit is checked and claimed in one step
        self.dependencies: DependencyGate | None = None

    # -- reading -------------------------------------------------------------------------------
    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def server_url(self, name: str, image: ImageSpec | None) -> str:
        default = image.default_url if image else "/"
        return names.user_prefix(name) + default.lstrip("/")

    def progress(self, name: str) -> SpawnProgress | None:
        return self._progress.get(name)

    def is_spawning(self, name: str) -> bool:
        task = self._spawns.get(name)
        return task is not None and not task.done()

    def route_secret(self, name: str) -> str | None:
        """The token the user's server requires, while its route may carry traffic (from memory)."""
        return self._secrets.get(name)

    async def load(self) -> None:
        """Read the secrets of servers that may carry traffic (at start-up, before any request)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(User.name, Server.route_secret)
                    .join(User.server)
                    .where(Server.state.in_((ServerState.RUNNING, ServerState.STARTING, ServerState.STOPPING)))
                )
            ).all()
        self._secrets = {name: secret for name, secret in rows if secret}

    async def view(self, name: str) -> ServerView | None:
        async with self.sessions() as session:
            user = await get_user(session, name)
            if user is None or user.server is None:
                return None
            server = user.server
            return ServerView(
                server.state, server.image_name, server.url, server.started, server.error, server.error_log
            )

    async def running_handle(self, name: str) -> tuple[ServerHandle, str] | None:
        """The handle and secret of a running server, for those who ask it questions (the culler)."""
        async with self.sessions() as session:
            user = await get_user(session, name)
            server = user.server if user else None
            if server is None or server.state != ServerState.RUNNING:
                return None
            return handle_of(server), server.route_secret

    async def logs(self, name: str, lines: int) -> str:
        """The last lines of the user's container log ('' when there is no container)."""
        async with self.sessions() as session:
            user = await get_user(session, name)
            server = user.server if user else None
            if server is None or not (server.container_id or server.container_name):
                return ""
            handle = handle_of(server)
        return await self.spawner.logs(handle, lines)

    # -- the one writer of server rows ---------------------------------------------------------
    async def _set(self, name: str, target: ServerState | None, seen: Seen | None = None, **fields: object) -> bool:
        """Move the server to ``target`` (checked against the state machine) and write ``fields`` with it.

        With ``seen``, nothing is written (and False returned) when the server is no longer as seen.
        """
        async with self.sessions.begin() as session:
            user = await get_user(session, name)
            server = user.server if user else None
            if server is None:
                return False
            if seen is not None and not seen.matches(server):
                return False
            if target is not None:
                server_states.check(server.state, target)
                server.state = target
            for key, value in fields.items():
                setattr(server, key, value)
            return True

    # -- start ---------------------------------------------------------------------------------
    async def start(self, name: str, image: ImageSpec) -> SpawnProgress:
        """Begin starting the user's server, or join the start in flight; returns at once."""
        async with self._lock(name):
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
                    progress.emit(
                        ProgressEvent(
                            100,
                            "Your server is already running.",
                            ready=True,
                            url=self.server_url(name, self.settings.image(server.image_name)),
                        )
                    )
                    return progress
                if server is None:
                    server = Server(image_name=image.name, route_secret="")
                    user.server = server
                if server.state is not None and not server_states.allowed(server.state, ServerState.STARTING):
                    # left half-done by a hub that stopped meanwhile; the reconciler finishes it within seconds
                    raise Conflict(
                        "Your server is still being cleaned up after an interrupted start or stop. "
                        "Please try again in a few seconds.",
                        f"{name}: start refused in {server.state}",
                    )
                if user.volume_name is None:  # the account's files: named after the account, never reused
                    user.volume_name = names.account_volume_name(
                        self.settings.spawner.prefix, names.user_slug(name), secrets.token_hex(6)
                    )
                server.image_name = image.name
                server.state = ServerState.STARTING
                server.route_secret = secrets.token_urlsafe(32)
                server.error = server.error_log = None
                server.container_id = server.container_name = server.url = None
                secret, volume = server.route_secret, user.volume_name
                login_environment = self.auth_state.open(user.auth_state) if self.auth_state is not None else {}
            self._progress[name] = progress
            progress.report(0, f"Starting your {image.title} server")
            request = SpawnRequest(
                name, names.user_slug(name), image, names.user_prefix(name), secret, volume, login_environment
            )
            self._spawns[name] = asyncio.create_task(self._spawn(request, progress), name=f"spawn-{name}")
            return progress

    async def _check_capacity(self, name: str) -> None:
        limit = self.settings.lifecycle.max_running_servers
        if limit is None:
            return
        async with self.sessions() as session:
            busy = (
                select(func.count(Server.id))
                .join(Server.owner)
                .where(Server.state.in_((ServerState.STARTING, ServerState.RUNNING)), User.name != name)
            )
            count = (await session.execute(busy)).scalar_one()
        if count >= limit:
            raise LimitReached(
                f"The hub is running its maximum of {limit} servers. Please try again later, "
                "or ask an admin to stop servers that are not in use.",
                f"{name} refused: {count} servers active, limit {limit}",
            )

    async def _spawn(self, request: SpawnRequest, progress: SpawnProgress) -> None:
        name, image = request.username, request.image
        began = time.monotonic()
        handle: ServerHandle | None = None

        def place_in_line(place: int) -> None:
            progress.report(2, f"Waiting for a free slot: you are number {place} in line")

        try:
            async with self.queue.turn(place_in_line):
                handle = await self.spawner.start(request, progress.report)
                await self._set(
                    name,
                    None,
                    container_id=handle.container_id,
                    container_name=handle.container_name,
                    volume_name=handle.volume_name,
                    url=handle.url,
                )
                progress.report(85, "Adding the route to your server")
                self._secrets[name] = request.token
                await self.proxy.add_route(Route(name, request.slug, request.base_url, handle.url, image.strip_prefix))
            await self._set(name, ServerState.RUNNING, started=utcnow(), last_activity=utcnow())
            elapsed = time.monotonic() - began
            if self.metrics:
                self.metrics.spawn_duration.observe(elapsed)
            log.info("server of %s ready in %.2fs (%s)", name, elapsed, handle.container_id[:12])
            progress.emit(ProgressEvent(100, "Your server is ready", ready=True, url=self.server_url(name, image)))
        except asyncio.CancelledError:
            await self._fail(name, handle, "The start of your server was interrupted.", None, progress)
            raise
        except HubError as exc:
            log.warning("start of %s's server failed: %s", name, exc.detail)
            tail = exc.log_tail if isinstance(exc, SpawnError) else None
            await self._fail(name, handle, exc.user_message, tail, progress)
        except Exception as exc:
            log.exception("start of %s's server failed unexpectedly", name)
            await self._fail(
                name,
                handle,
                f"Your server could not start because of an internal error ({type(exc).__name__}).",
                None,
                progress,
            )

    async def _fail(
        self, name: str, handle: ServerHandle | None, message: str, log_tail: str | None, progress: SpawnProgress
    ) -> None:
        """Mark failed: clean up after a failed start; the state and the final event are written whatever happens."""
        if self.metrics:
            self.metrics.spawn_failures.inc()
        self._secrets.pop(name, None)
        try:
            await self.proxy.delete_route(names.user_slug(name))
            if handle is not None:
                await self.spawner.stop(handle)
        except Exception as exc:
            log.warning("cleanup after failed start of %s: %s", name, getattr(exc, "detail", exc))
        finally:
            progress.emit(ProgressEvent(100, failure_text(message, log_tail), failed=True))
            await self._set(name, ServerState.FAILED, error=message, error_log=log_tail or None, url=None)

    # -- stop ----------------------------------------------------------------------------------
    async def stop(self, name: str, reason: str | None = None) -> None:
        """Stop the user's server and keep its volume. Stopping a stopped server does nothing.

        ``reason`` is shown to the user on their home page (idle culling, crashes).
        """
        async with self._lock(name):
            await self._stop_locked(name, reason)

    async def cull(self, name: str, reason: str, seen: Seen) -> bool:
        """Stop a server the culler found idle, unless it changed (restarted, stopped) since it looked."""
        async with self._lock(name):
            if self.is_spawning(name) or not await self._still(name, seen):
                return False
            await self._stop_locked(name, reason)
            return True

    async def _still(self, name: str, seen: Seen) -> bool:
        async with self.sessions() as session:
            user = await get_user(session, name)
            server = user.server if user else None
        return seen.matches(server)

    async def _stop_locked(self, name: str, reason: str | None) -> None:
        """The route goes first, so no request reaches a container that is going away; if the container
        cannot be stopped (Docker away), the route comes back and the server stays usable."""
        task = self._spawns.get(name)
        interrupted = task is not None and not task.done()
        if task is not None and interrupted:
            task.cancel()  # the start marks the server failed and removes what it made
            await asyncio.gather(task, return_exceptions=True)
        async with self.sessions() as session:
            user = await get_user(session, name)
            server = user.server if user else None
            if server is None or server.state == ServerState.STOPPED:
                return
            handle, previous = handle_of(server), server.state
            route = route_of(name, server, self.settings.image(server.image_name)) if server.url else None
        secret = self._secrets.pop(name, None)
        if previous == ServerState.FAILED:  # nothing runs; make sure nothing is left, keep the reason unless asked
            await self.proxy.delete_route(names.user_slug(name))
            if handle.container_id or handle.container_name:
                await self.spawner.stop(handle)
            if reason is not None or interrupted:  # a new reason (or none, after a cancelled start) replaces the old
                await self._set(name, ServerState.STOPPED, container_id=None, url=None, error=reason, error_log=None)
            else:
                await self._set(name, ServerState.STOPPED, container_id=None, url=None)
            self._progress.pop(name, None)
            return
        await self._set(name, ServerState.STOPPING)
        await self.proxy.delete_route(names.user_slug(name))
        try:
            if handle.container_id or handle.container_name:
                await self.spawner.stop(handle)
        except Exception as exc:
            if previous == ServerState.RUNNING and route is not None and secret is not None:
                await self._set(name, ServerState.RUNNING)
                self._secrets[name] = secret
                await self.proxy.add_route(route)
            else:
                await self._set(name, ServerState.FAILED, error="Your server could not be stopped cleanly.")
            if isinstance(exc, HubError):
                raise
            log.exception("stopping the server of %s failed", name)
            raise HubError("Your server could not be stopped. Please try again in a minute.") from exc
        await self._set(name, ServerState.STOPPED, container_id=None, url=None, error=reason, error_log=None)
        self._progress.pop(name, None)
        log.info("stopped the server of %s", name)

    # -- steps the reconciler calls after it looked ---------------------------------------------
    async def adopt(self, name: str, seen: Seen, *, rewrite_route: bool) -> None:
        """A running server whose container runs: keep it, and (re)write its route when asked."""
        async with self._lock(name):
            if self.is_spawning(name) or not await self._still(name, seen):
                return
            async with self.sessions() as session:
                user = await get_user(session, name)
                server = user.server if user else None
                if server is None:
                    return
                route = route_of(name, server, self.settings.image(server.image_name))
                self._secrets[name] = server.route_secret
            log.info(
                "reconcile: %s the route of %s's running server", "rewriting" if rewrite_route else "adopting", name
            )
            await self.proxy.add_route(route)

    async def record_crash(self, name: str, seen: Seen, info: ServerInfo | None) -> None:
        """A running server whose container exited (or vanished): route gone, stopped, and the user told why."""
        async with self._lock(name):
            if self.is_spawning(name) or not await self._still(name, seen):
                return
            view = await self.view(name)
            image = self.settings.image(view.image_name) if view else None
            tail = await self.spawner.logs(handle_from(info), LOG_TAIL_LINES) if info is not None else ""
            log.warning(
                "server of %s %s",
                name,
                "is gone from Docker" if info is None else f"exited (code {info.exit_code}, oom {info.oom_killed})",
            )
            self._secrets.pop(name, None)
            await self.proxy.delete_route(names.user_slug(name))
            if info is not None:
                await self.spawner.stop(handle_from(info))
            await self._set(
                name,
                ServerState.STOPPED,
                url=None,
                container_id=None,
                error=crash_message(info, image),
                error_log=tail.rstrip() or None,
            )

    async def finish_interrupted(self, name: str, seen: Seen, info: ServerInfo | None) -> None:
        """A start or stop that a hub restart cut short: container removed, route removed, server stopped."""
        async with self._lock(name):
            if self.is_spawning(name) or not await self._still(name, seen):
                return
            log.warning("finishing the interrupted %s of %s's server", seen.state.value, name)
            async with self.sessions() as session:
                user = await get_user(session, name)
                server = user.server if user else None
                recorded = handle_of(server) if server and (server.container_id or server.container_name) else None
            if info is not None:
                await self.spawner.stop(handle_from(info))
            elif recorded is not None:
                await self.spawner.stop(recorded)
            self._secrets.pop(name, None)
            await self.proxy.delete_route(names.user_slug(name))
            await self._set(
                name,
                ServerState.STOPPED,
                url=None,
                container_id=None,
                error="The hub restarted while your server was starting or stopping. "
                "Start it again; your files are kept.",
            )

    async def remove_leftovers(self, name: str, seen: Seen, info: ServerInfo | None, routed: bool) -> None:
        """A server that is not running but left a container or a route behind."""
        async with self._lock(name):
            if self.is_spawning(name) or not await self._still(name, seen):
                return
            if info is not None:
                log.warning("removing leftover container %s of %s", info.container_name, name)
                await self.spawner.stop(handle_from(info))
            if routed:
                self._secrets.pop(name, None)
                await self.proxy.delete_route(names.user_slug(name))

    # -- accounts going away ---------------------------------------------------------------------
    async def delete_user(
        self, name: str, delete_account: Callable[[str], Awaitable[None]], remove_files: bool = False
    ) -> None:
        """Stop the server, delete the account and, if asked, its files: under the user's lock, so a start
        that races with the deletion either finishes first (and is stopped) or finds no account."""
        async with self._lock(name):
            volume = await self._volume_of(name)
            await self._stop_locked(name, None)
            await delete_account(name)
            self._progress.pop(name, None)
            self._secrets.pop(name, None)
        if remove_files and volume:
            await self.spawner.remove_data(volume)
            log.info("removed the files of %s (%s)", name, volume)

    async def remove_data(self, name: str) -> None:
        """Delete the user's stored files (their volume). The server must be stopped."""
        async with self._lock(name):
            volume = await self._volume_of(name)
            if volume:
                await self.spawner.remove_data(volume)
                log.info("removed the files of %s (%s)", name, volume)

    async def _volume_of(self, name: str) -> str | None:
        async with self.sessions() as session:
            user = await get_user(session, name)
            if user is None:
                raise NotFound(f"There is no user {name}.")
            return user.volume_name

    # -- shut-down -------------------------------------------------------------------------------
    async def shutdown(self, stop_servers: bool = False) -> None:
        """Abandon starts in flight cleanly; running servers keep running unless asked otherwise."""
        tasks = [task for task in self._spawns.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if stop_servers:
            async with self.sessions() as session:
                running = (
                    (
                        await session.execute(
                            select(User.name).join(User.server).where(Server.state == ServerState.RUNNING)
                        )
                    )
                    .scalars()
                    .all()
                )
            await asyncio.gather(*(self.stop(name) for name in running), return_exceptions=True)
