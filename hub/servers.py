"""Users' servers: the one owner of their state, and the only code that uses the spawner, the proxy and
the database together.

A user has a default server (name ``""``, at ``/user/<name>/``) and, when ``spawner.named_servers`` is
on, named ones (``/user/<name>/<server>/``); everything here is keyed by (user, server name).
Every change of a server's state is a named step below (start, stop, cull, adopt, record a crash,
finish an interrupted start or stop, remove leftovers, delete a server or the user); the reconciler
and the culler only observe and then call these steps. The states and the allowed changes are drawn
in server_states.py. Steps for one server run one at a time (a lock per server); a start registers
under its user's lock as well, which deleting the user holds throughout. A step started from an
observation does nothing when the server changed since (``Seen``).

A start resolves the resources asked for (hub/resources.py) and takes the server's GPUs (hub/gpus.py)
before anything changes; every step that ends a server (stop, cull, crash, failed or interrupted start,
deletion) gives them back once its container is gone.

The server's secret token lives in the database and in memory: forward auth hands it to Traefik
with each request it allows (``route_secret``), so it is in no file Traefik reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import names, resources, server_states
from hub.auth_state import AuthStateBox
from hub.config import ImageSpec, Settings
from hub.db import Sessionmaker, get_user
from hub.errors import BadRequest, Conflict, HubError, LimitReached, NotFound, SpawnError
from hub.gpus import GPUAllocator, NoGPUFree, gpu_label, parse_gpu_label
from hub.i18n import L_, N_, Text
from hub.metrics import HubMetrics
from hub.models import Server, ServerState, User, utcnow
from hub.progress import ProgressEvent, SpawnProgress
from hub.proxy import Proxy, Route
from hub.resources import Limits
from hub.spawn_queue import SpawnQueue
from hub.spawner import ServerHandle, ServerInfo, Spawner, SpawnRequest
from hub.tokens import aware

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 20
Key = tuple[str, str]
"""(user name, server name); "" names the default server."""


class DependencyGate(Protocol):
    async def require_docker(self) -> None:
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
    name: str = ""
    """"" for the default server."""
    limits: str | None = None
    """The limits chosen at its last start, in words (``Memory 2g · 1 CPU``); None before choices existed."""


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


def route_of(user: str, server: Server, image: ImageSpec | None, shared: bool = False) -> Route:
    return Route(
        username=user,
        slug=names.server_slug(user, server.name),
        prefix=names.server_prefix(user, server.name),
        target=server.url or "",
        strip_prefix=bool(image and image.strip_prefix),
        server_name=server.name,
        shared=shared,
    )


def limits_of(server: Server) -> Limits | None:
    return resources.limits_of(resources.stored_options(server.user_options))


def view_of(server: Server) -> ServerView:
    limits = limits_of(server)
    return ServerView(
        server.state,
        server.image_name,
        server.url,
        server.started,
        server.error,
        server.error_log,
        server.name,
        limits.describe() if limits else None,
    )


def stored_options(limits: Limits, image: ImageSpec) -> dict[str, str]:
    """The limits a server row keeps (and the API shows in ``user_options``); no GPUs go unsaid for an image
    that never asks for any."""
    options = limits.as_user_options()
    if options.get("gpus") == "0" and not image.asks_for_gpus:
        del options["gpus"]
    return options


def gpu_key(key: Key) -> str:
    """The allocator's name of a server: ``alice`` or ``alice/x``."""
    return names.server_label(*key)


async def server_row(session: AsyncSession, key: Key) -> Server | None:
    user = await get_user(session, key[0])
    return user.server_named(key[1]) if user else None


async def server_alone(session: AsyncSession, key: Key) -> Server | None:
    """The server row in one query, without its owner and the owner's other servers (which ``server_row``
    loads): for writes that touch only the server, several in each start and stop."""
    query = select(Server).join(User, Server.user_id == User.id).where(User.name == key[0], Server.name == key[1])
    return (await session.execute(query)).scalar_one_or_none()


WITH_LOG = N_("%(reason)s\n\nLast lines of its log:\n%(log)s")
"""A failed start in the progress stream: the reason, then the log lines."""


def failure_text(message: str, log_tail: str | None) -> str:
    """A failure as one text (the progress stream has one message field): the reason, then the log lines."""
    if not log_tail:
        return message
    return Text(WITH_LOG, names={"reason": message, "log": log_tail.rstrip()})


def failure_reason(progress: SpawnProgress | None) -> str | None:
    """The reason of a start that failed in this process, as it was made (a page shows it in the reader's
    language; the database keeps the English text); None when the start did not fail here."""
    last = progress.latest if progress is not None else None
    if last is None or not last.failed:
        return None
    if isinstance(last.message, Text) and last.message.msgid == WITH_LOG:
        reason = last.message.names["reason"]
        return reason if isinstance(reason, str) else str(reason)
    return last.message


def what_happened(info: ServerInfo | None) -> str:
    """For the admin's log: how a running server ended."""
    if info is None:
        return "is gone from Docker"
    if info.lost:
        return f"is lost: {info.lost}"
    return f"exited (code {info.exit_code}, oom {info.oom_killed})"


def crash_message(info: ServerInfo | None, image: ImageSpec | None, mem_limit: str | None = None) -> str:
    if info is None:
        return N_("Your server's container disappeared, so it was marked stopped. Your files are kept.")
    if info.lost:  # e.g. its Swarm node went away (hub/swarm_nodes.py)
        return info.lost
    if info.oom_killed:
        memory = mem_limit or (image.mem_limit if image else None)
        if memory:
            return L_(
                "Your server was stopped because it ran out of memory (its limit is %(limit)s). Your files are kept.",
                limit=memory,
            )
        return N_("Your server was stopped because it ran out of memory. Your files are kept.")
    return L_("Your server stopped unexpectedly (exit code %(code)s). Your files are kept.", code=info.exit_code)


class ServerManager:
    def __init__(
        self,
        settings: Settings,
        sessions: Sessionmaker,
        spawner: Spawner,
        proxy: Proxy,
        metrics: HubMetrics | None = None,
        gpus: GPUAllocator | None = None,
    ) -> None:
        self.settings = settings
        self.gpus = gpus if gpus is not None else GPUAllocator((), sharing=settings.spawner.gpu_sharing)
        """Who holds which of the host's GPUs (hub/gpus.py); set by the app after its check at start-up."""
        self.groups_of: Callable[[str], frozenset[str]] = lambda name: frozenset()
        """A user's groups, for their resource maxima (group_limits); set by the app."""
        self.metrics = metrics
        self.auth_state: AuthStateBox | None = None
        """Opens what login methods hand to servers; set by the app."""
        self.sessions = sessions
        self.spawner = spawner
        self.proxy = proxy
        self._spawns: dict[Key, asyncio.Task[None]] = {}
        self._progress: dict[Key, SpawnProgress] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._user_locks: dict[str, asyncio.Lock] = {}
        self._secrets: dict[Key, str] = {}
        self.is_shared: Callable[[str, str], bool] = lambda owner, server: False
        """Whether a server has shares (set by the app from the sharing service): its route then splits WebSockets."""
        self._routed_shared: set[Key] = set()
        self.queue = SpawnQueue(settings.lifecycle.concurrent_spawns)
        self._capacity = asyncio.Lock()  # the running-server limit is checked and claimed in one step
        self.dependencies: DependencyGate | None = None
        self.on_server_deleted: list[Callable[[str, str], Awaitable[None]]] = []
        """Called with (user, server) after a named server was deleted (sharing forgets its shares)."""
        self.on_spawn_finished: list[Callable[[str, str, str, float, bool], None]] = []
        """Called with (user, server, image, seconds, worked) when a start ends either way (hub/usage.py)."""
        self.on_server_renamed: list[Callable[[str, str, str], Awaitable[None]]] = []
        """Called with (user, old name, new name) after a named server was renamed: whatever keeps something by
        server name in memory (shares, activity) moves it to the new name."""

    # -- reading -------------------------------------------------------------------------------
    def _lock(self, key: Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _user_lock(self, name: str) -> asyncio.Lock:
        return self._user_locks.setdefault(name, asyncio.Lock())

    def server_url(self, name: str, image: ImageSpec | None, server: str = "") -> str:
        default = image.default_url if image else "/"
        return names.server_prefix(name, server) + default.lstrip("/")

    def progress(self, name: str, server: str = "") -> SpawnProgress | None:
        return self._progress.get((name, server))

    def is_spawning(self, name: str, server: str = "") -> bool:
        task = self._spawns.get((name, server))
        return task is not None and not task.done()

    def spawning_servers(self, name: str) -> set[str]:
        """The names of the user's servers whose start is under way."""
        return {server for (user, server), task in self._spawns.items() if user == name and not task.done()}

    def route_secret(self, name: str, server: str = "") -> str | None:
        """The token the server requires, while its route may carry traffic (from memory)."""
        return self._secrets.get((name, server))

    async def load(self) -> None:
        """Read the secrets of servers that may carry traffic (at start-up, before any request)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(User.name, Server.name, Server.route_secret, Server.gpu_ids)
                    .join(User.servers)
                    .where(Server.state.in_((ServerState.RUNNING, ServerState.STARTING, ServerState.STOPPING)))
                )
            ).all()
        self._secrets = {(name, server): secret for name, server, secret, _ in rows if secret}
        for name, server, _, gpu_ids in rows:  # until the reconciler reads them from the containers' labels
            self.gpus.adopt(gpu_key((name, server)), parse_gpu_label(gpu_ids))

    async def view(self, name: str, server: str = "") -> ServerView | None:
        async with self.sessions() as session:
            row = await server_row(session, (name, server))
            return view_of(row) if row is not None else None

    async def views(self, name: str) -> list[ServerView]:
        """Every server of the user, the default one first, then by name."""
        async with self.sessions() as session:
            user = await get_user(session, name)
            rows = sorted(user.servers, key=lambda row: row.name) if user else []
            return [view_of(row) for row in rows]

    async def running_handle(self, name: str, server: str = "") -> tuple[ServerHandle, str] | None:
        """The handle and secret of a running server, for those who ask it questions (the culler)."""
        async with self.sessions() as session:
            row = await server_row(session, (name, server))
            if row is None or row.state != ServerState.RUNNING:
                return None
            return handle_of(row), row.route_secret

    async def logs(self, name: str, lines: int, server: str = "") -> str:
        """The last lines of the server's container log ('' when there is no container)."""
        async with self.sessions() as session:
            row = await server_row(session, (name, server))
            if row is None or not (row.container_id or row.container_name):
                return ""
            handle = handle_of(row)
        return await self.spawner.logs(handle, lines)

    # -- the one writer of server rows ---------------------------------------------------------
    async def _set(self, key: Key, target: ServerState | None, seen: Seen | None = None, **fields: object) -> bool:
        """Move the server to ``target`` (checked against the state machine) and write ``fields`` with it.

        With ``seen``, nothing is written (and False returned) when the server is no longer as seen.
        """
        async with self.sessions.begin() as session:
            server = await server_alone(session, key)
            if server is None:
                return False
            if seen is not None and not seen.matches(server):
                return False
            if target is not None:
                server_states.check(server.state, target)
                server.state = target
            for field, value in fields.items():
                setattr(server, field, value)
            return True

    # -- start ---------------------------------------------------------------------------------
    async def start(
        self,
        name: str,
        image: ImageSpec,
        server: str = "",
        user_options: Mapping[str, object] | None = None,
        *,
        admin: bool = False,
    ) -> SpawnProgress:
        """Begin starting one of the user's servers (made if new), or join the start in flight; returns at once
        (within RECHECK_TIMEOUT when Docker was last seen away and is asked again first, hub/dependencies.py).

        ``user_options`` are the resources asked for (JupyterHub's shape, hub/resources.py); a value not offered
        is a 400 and nothing starts. ``admin``: the one who asks is an admin (no group maxima). GPUs are taken
        here, so a start without a free GPU is refused (429) before anything changes, unless
        ``spawner.gpu_wait`` lets it wait in line for one.
        """
        key = (name, server)
        if server:
            if not self.settings.spawner.named_servers:
                raise BadRequest(N_("Named servers are not enabled on this hub."))
            names.validate_server_name(server)
        limits = resources.resolve(
            image, user_options or {}, self.groups_of(name), admin, self.settings, host_gpus=self.gpus.total
        )
        async with self._user_lock(name), self._lock(key):
            if self.is_spawning(name, server):
                return self._progress[key]
            progress = SpawnProgress()
            if self.dependencies is not None:
                await self.dependencies.require_docker()
            taken: list[str] = []  # the server key, once GPUs are taken for this start
            async with self._capacity, self._giving_back_gpus_on_error(taken), self.sessions.begin() as session:
                await self._check_capacity(key)
                user = await get_user(session, name)
                if user is None:
                    raise HubError(N_("Your user account does not exist any more."))
                row = user.server_named(server)
                if row is not None and row.state == ServerState.RUNNING:
                    progress.emit(
                        ProgressEvent(
                            100,
                            N_("Your server is already running."),
                            ready=True,
                            url=self.server_url(name, self.settings.image(row.image_name), server),
                        )
                    )
                    return progress
                if row is None:
                    if server:
                        self._check_named_limit(user, server)
                    row = Server(name=server, image_name=image.name, route_secret="")
                    user.servers.append(row)
                if row.state is not None and not server_states.allowed(row.state, ServerState.STARTING):
                    # left half-done by a hub that stopped meanwhile; the reconciler finishes it within seconds
                    raise Conflict(
                        N_(
                            "Your server is still being cleaned up after an interrupted start or stop. "
                            "Please try again in a few seconds."
                        ),
                        f"{names.server_label(name, server)}: start refused in {row.state}",
                    )
                if user.volume_name is None:  # the account's files: named after the account, never reused
                    user.volume_name = names.account_volume_name(
                        self.settings.spawner.prefix, names.user_slug(name), secrets.token_hex(6)
                    )
                volume, volume_server = user.volume_name, ""
                if server and self.settings.spawner.volume_per_server:
                    if row.volume_name is None or row.volume_name == user.volume_name:
                        row.volume_name = names.account_volume_name(
                            self.settings.spawner.prefix, names.server_slug(name, server), secrets.token_hex(6)
                        )
                    volume, volume_server = row.volume_name, server
                row.image_name = image.name
                row.state = ServerState.STARTING
                row.route_secret = secrets.token_urlsafe(32)
                row.error = row.error_log = None
                row.container_id = row.container_name = row.url = row.gpu_ids = None
                row.user_options = json.dumps(stored_options(limits, image))
                secret = row.route_secret
                login_environment = self.auth_state.open(user.auth_state) if self.auth_state is not None else {}
                gpu_ids, wait_for_gpus = self._take_gpus(key, limits)  # last: nothing after it can refuse
                taken.append(gpu_key(key))
            self._progress[key] = progress
            progress.report(0, L_("Starting your %(image)s server", image=image.title))
            request = SpawnRequest(
                name,
                names.server_slug(name, server),
                image,
                names.server_prefix(name, server),
                secret,
                volume,
                login_environment,
                server_name=server,
                volume_server=volume_server,
                limits=limits,
                gpu_ids=gpu_ids,
            )
            self._spawns[key] = asyncio.create_task(
                self._spawn(request, progress, wait_for_gpus), name=f"spawn-{names.server_label(name, server)}"
            )
            return progress

    def _take_gpus(self, key: Key, limits: Limits) -> tuple[tuple[str, ...], bool]:
        """The GPUs for a start, taken now (plain code: two starts cannot take the same GPU); or, when none is
        free and ``spawner.gpu_wait`` is set, (), True: the start waits for them before its turn in line."""
        if not limits.wants_gpus:
            self._release_gpus(key)
            return (), False
        try:
            return tuple(self.gpus.try_allocate(gpu_key(key), limits.gpus)), False
        except NoGPUFree:
            count = self.gpus.total if limits.gpus == "all" else limits.gpus
            if self.settings.spawner.gpu_wait <= 0 or not 0 < count <= self.gpus.total:
                raise
            return (), True

    def _release_gpus(self, key: Key) -> None:
        """Give back the server's GPUs (nothing held is fine): call once its container is gone."""
        self.gpus.release(gpu_key(key))

    @contextlib.asynccontextmanager
    async def _giving_back_gpus_on_error(self, taken: list[str]) -> AsyncIterator[None]:
        """GPUs taken for a start whose record could not be written go back (only those: a refusal before
        they were taken leaves alone what the server may hold)."""
        try:
            yield
        except BaseException:
            for server_key in taken:
                self.gpus.release(server_key)
            raise

    def _check_named_limit(self, user: User, server: str) -> None:
        """JupyterHub's rule: a new named server is refused when the user has the limit's number already."""
        limit = self.settings.lifecycle.named_server_limit_per_user
        named = [row for row in user.servers if row.name]
        if limit and len(named) >= limit:
            raise BadRequest(
                L_(
                    "You already have the maximum of %(limit)d named servers. Delete one before you make a new one.",
                    limit=limit,
                ),
                f"{user.name}/{server} refused: {len(named)} named servers, limit {limit}",
            )

    async def _check_capacity(self, key: Key) -> None:
        limit = self.settings.lifecycle.max_running_servers
        if limit is None:
            return
        name, server = key
        async with self.sessions() as session:
            busy = (
                select(func.count(Server.id))
                .join(Server.owner)
                .where(
                    Server.state.in_((ServerState.STARTING, ServerState.RUNNING)),
                    ~((User.name == name) & (Server.name == server)),
                )
            )
            count = (await session.execute(busy)).scalar_one()
        if count >= limit:
            raise LimitReached(
                L_(
                    "The hub is running its maximum of %(limit)d servers. Please try again later, "
                    "or ask an admin to stop servers that are not in use.",
                    limit=limit,
                ),
                f"{names.server_label(name, server)} refused: {count} servers active, limit {limit}",
            )

    async def _spawn(self, request: SpawnRequest, progress: SpawnProgress, wait_for_gpus: bool = False) -> None:
        name, server, image = request.username, request.server_name, request.image
        key, label = (name, server), names.server_label(name, server)
        began = time.monotonic()
        handle: ServerHandle | None = None
        route_task: asyncio.Future[None] | None = None
        worked = False

        def place_in_line(place: int) -> None:
            progress.report(2, L_("Waiting for a free slot: you are number %(place)d in line", place=place))

        try:
            if wait_for_gpus and request.limits is not None:
                wait = self.settings.spawner.gpu_wait
                progress.report(1, L_("Waiting for a free GPU (up to %(wait)g seconds)", wait=wait))
                taken = await self.gpus.allocate(gpu_key(key), request.limits.gpus, wait=wait)
                request = replace(request, gpu_ids=tuple(taken))
            async with self.queue.turn(place_in_line):
                shared = self.is_shared(name, server)

                def route_to(url: str) -> Route:
                    return Route(name, request.slug, request.base_url, url, image.strip_prefix, server, shared)

                def address_known(early: ServerHandle) -> None:
                    # Write the route while the server boots: Traefik's wait overlaps the boot. The browser only
                    # goes there once the hub says ready, which is after both (no 404 after the redirect).
                    nonlocal route_task
                    self._secrets[key] = request.token
                    route_task = asyncio.ensure_future(self.proxy.add_route(route_to(early.url)))

                try:
                    handle = await self.spawner.start(request, progress.report, address_known)
                    await self._set(
                        key,
                        None,
                        container_id=handle.container_id,
                        container_name=handle.container_name,
                        volume_name=handle.volume_name,
                        url=handle.url,
                        gpu_ids=gpu_label(request.gpu_ids) or None,
                    )
                    progress.report(85, N_("Adding the route to your server"))
                    self._secrets[key] = request.token
                    if route_task is not None:
                        await route_task  # written while the server booted (raises if it could not be)
                    else:  # a spawner that does not tell the address early
                        await self.proxy.add_route(route_to(handle.url))
                except BaseException:
                    if route_task is not None and not route_task.done():
                        route_task.cancel()  # before the clean-up deletes the route, never after
                        await asyncio.gather(route_task, return_exceptions=True)
                    raise
                self._mark_routed(key, shared)
            await self._set(key, ServerState.RUNNING, started=utcnow(), last_activity=utcnow())
            elapsed = time.monotonic() - began
            if self.metrics:
                self.metrics.spawn_duration.observe(elapsed)
            worked = True
            log.info("server of %s ready in %.2fs (%s)", label, elapsed, handle.container_id[:12])
            progress.emit(
                ProgressEvent(100, N_("Your server is ready"), ready=True, url=self.server_url(name, image, server))
            )
        except asyncio.CancelledError:
            await self._fail(key, handle, N_("The start of your server was interrupted."), None, progress)
            raise
        except HubError as exc:
            log.warning("start of %s's server failed: %s", label, exc.detail)
            tail = exc.log_tail if isinstance(exc, SpawnError) else None
            await self._fail(key, handle, exc.user_message, tail, progress)
        except Exception as exc:
            log.exception("start of %s's server failed unexpectedly", label)
            await self._fail(
                key,
                handle,
                L_("Your server could not start because of an internal error (%(error)s).", error=type(exc).__name__),
                None,
                progress,
            )
        finally:
            for listener in self.on_spawn_finished:
                listener(name, server, image.name, time.monotonic() - began, worked)

    async def _fail(
        self, key: Key, handle: ServerHandle | None, message: str, log_tail: str | None, progress: SpawnProgress
    ) -> None:
        """Mark failed: clean up after a failed start; the state and the final event are written whatever happens."""
        if self.metrics:
            self.metrics.spawn_failures.inc()
        self._secrets.pop(key, None)
        container_gone = handle is None  # a container the spawner made and could not start, it removed itself
        try:
            await self.proxy.delete_route(names.server_slug(*key))
            if handle is not None:
                await self.spawner.stop(handle)
                container_gone = True
        except Exception as exc:
            log.warning("cleanup after failed start of %s: %s", names.server_label(*key), getattr(exc, "detail", exc))
        finally:
            if container_gone:  # else its GPUs stay taken until the reconciler removes the container
                self._release_gpus(key)
            try:  # the state first: whoever the final event wakes reads the failure from the database
                await self._set(
                    key, ServerState.FAILED, error=message, error_log=log_tail or None, url=None, gpu_ids=None
                )
            finally:
                progress.emit(ProgressEvent(100, failure_text(message, log_tail), failed=True))

    # -- stop ----------------------------------------------------------------------------------
    async def stop(self, name: str, reason: str | None = None, server: str = "") -> None:
        """Stop one of the user's servers and keep its volume. Stopping a stopped server does nothing.

        ``reason`` is shown to the user on their home page (idle culling, crashes).
        """
        async with self._lock((name, server)):
            await self._stop_locked((name, server), reason)

    async def cull(self, name: str, reason: str, seen: Seen, server: str = "") -> bool:
        """Stop a server the culler found idle, unless it changed (restarted, stopped) since it looked."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return False
            await self._stop_locked(key, reason)
            return True

    async def _still(self, key: Key, seen: Seen) -> bool:
        async with self.sessions() as session:
            server = await server_row(session, key)
        return seen.matches(server)

    async def _stop_locked(self, key: Key, reason: str | None) -> None:
        """The route goes first, so no request reaches a container that is going away; if the container
        cannot be stopped (Docker away), the route comes back and the server stays usable."""
        label, slug = names.server_label(*key), names.server_slug(*key)
        task = self._spawns.get(key)
        interrupted = task is not None and not task.done()
        if task is not None and interrupted:
            task.cancel()  # the start marks the server failed and removes what it made
            await asyncio.gather(task, return_exceptions=True)
        async with self.sessions() as session:
            server = await server_row(session, key)
            if server is None or server.state == ServerState.STOPPED:
                self._release_gpus(key)
                return
            handle, previous = handle_of(server), server.state
            route = route_of(key[0], server, self.settings.image(server.image_name)) if server.url else None
        secret = self._secrets.pop(key, None)
        if previous == ServerState.FAILED:  # nothing runs; make sure nothing is left, keep the reason unless asked
            await self.proxy.delete_route(slug)
            if handle.container_id or handle.container_name:
                await self.spawner.stop(handle)
            self._release_gpus(key)
            if reason is not None or interrupted:  # a new reason (or none, after a cancelled start) replaces the old
                await self._set(
                    key, ServerState.STOPPED, container_id=None, url=None, gpu_ids=None, error=reason, error_log=None
                )
            else:
                await self._set(key, ServerState.STOPPED, container_id=None, url=None, gpu_ids=None)
            self._progress.pop(key, None)
            return
        await self._set(key, ServerState.STOPPING)
        await self.proxy.delete_route(slug)
        try:
            if handle.container_id or handle.container_name:
                await self.spawner.stop(handle)
        except Exception as exc:
            if previous == ServerState.RUNNING and route is not None and secret is not None:
                await self._set(key, ServerState.RUNNING)
                self._secrets[key] = secret
                await self.proxy.add_route(route)
            else:
                await self._set(key, ServerState.FAILED, error=N_("Your server could not be stopped cleanly."))
            if isinstance(exc, HubError):
                raise
            log.exception("stopping the server of %s failed", label)
            raise HubError(N_("Your server could not be stopped. Please try again in a minute.")) from exc
        self._release_gpus(key)
        await self._set(
            key, ServerState.STOPPED, container_id=None, url=None, gpu_ids=None, error=reason, error_log=None
        )
        self._progress.pop(key, None)
        log.info("stopped the server of %s", label)

    def _mark_routed(self, key: Key, shared: bool) -> None:
        if shared:
            self._routed_shared.add(key)
        else:
            self._routed_shared.discard(key)

    async def sync_share_routes(self) -> None:
        """Give running servers that became shared the route that sends recipients' WebSockets through the hub.

        Called after every change of shares; returns once Traefik lists the new routers, so a recipient who opens
        the server right after the owner shared it gets working WebSockets. (A server no longer shared keeps the
        split route until it next starts: it only costs Traefik a little.)"""
        for key in [key for key in list(self._secrets) if key not in self._routed_shared and self.is_shared(*key)]:
            async with self._lock(key):
                if key not in self._secrets or self.is_spawning(*key):
                    continue
                async with self.sessions() as session:
                    row = await server_row(session, key)
                    if row is None or row.state != ServerState.RUNNING:
                        continue
                    route = route_of(key[0], row, self.settings.image(row.image_name), True)
                try:
                    await self.proxy.add_route(route)
                except Exception:
                    log.exception("could not give the shared server %s its route", names.server_label(*key))
                    continue
                self._routed_shared.add(key)

    async def delete_server(self, name: str, server: str) -> None:
        """Stop a named server and forget it (its name is free again). Its files are kept: the account's
        volume, or with ``spawner.volume_per_server`` its own volume (labelled ``hub.server``)."""
        if not server:
            raise BadRequest(N_("The default server cannot be deleted, only stopped."))
        key = (name, server)
        async with self._user_lock(name), self._lock(key):
            async with self.sessions() as session:
                if await server_row(session, key) is None:
                    raise NotFound(L_("%(name)s has no server named %(server)r.", name=name, server=server))
            await self._stop_locked(key, None)
            async with self.sessions.begin() as session:
                row = await server_row(session, key)
                if row is not None:
                    server_states.check(row.state, ServerState.STOPPED)
                    await session.delete(row)
            self._progress.pop(key, None)
            self._secrets.pop(key, None)
            self._spawns.pop(key, None)
            for listener in self.on_server_deleted:
                await listener(name, server)
        log.info("deleted the server %s", names.server_label(name, server))

    async def create(
        self,
        name: str,
        server: str,
        image: ImageSpec,
        user_options: Mapping[str, object] | None = None,
        *,
        admin: bool = False,
    ) -> None:
        """Make a named server without starting it (JupyterHub 6's PUT): stopped, with the image and resources
        its first start will use. A name in use is a 409; the named-server limit counts it at once."""
        if not self.settings.spawner.named_servers:
            raise BadRequest(N_("Named servers are not enabled on this hub."))
        if not server:
            raise Conflict(N_("Every user has a default server already; only named servers can be made."))
        names.validate_server_name(server)
        limits = resources.resolve(
            image, user_options or {}, self.groups_of(name), admin, self.settings, host_gpus=self.gpus.total
        )
        async with self._user_lock(name), self._lock((name, server)), self.sessions.begin() as session:
            user = await get_user(session, name)
            if user is None:
                raise NotFound(L_("There is no user %(name)s.", name=name))
            if user.server_named(server) is not None:
                raise Conflict(L_("%(name)s already has a server named %(server)r.", name=name, server=server))
            self._check_named_limit(user, server)
            row = Server(name=server, image_name=image.name, route_secret="", state=ServerState.STOPPED)
            row.user_options = json.dumps(stored_options(limits, image))
            user.servers.append(row)
        log.info("made the server %s (not started)", names.server_label(name, server))

    async def rename(self, name: str, server: str, new_name: str) -> None:
        """Give a stopped named server another name (JupyterHub 6's PATCH). Its files, shares and share codes
        stay with it: they belong to the server's record, not to its name. What others keep in memory by its name
        (sharing's answers, its last activity) follows through ``on_server_renamed``."""
        if not self.settings.spawner.named_servers:
            raise BadRequest(N_("Named servers are not enabled on this hub."))
        if not server:
            raise BadRequest(N_("The default server cannot be renamed."))
        names.validate_server_name(new_name)
        if new_name == server:
            return
        async with self._user_lock(name), self._lock((name, server)), self._lock((name, new_name)):
            async with self.sessions.begin() as session:
                user = await get_user(session, name)
                row = user.server_named(server) if user else None
                if user is None or row is None:
                    raise NotFound(
                        L_("%(name)s has no server named %(server)r.", name=name, server=names.truncate(server))
                    )
                if self.is_spawning(name, server) or row.state != ServerState.STOPPED:
                    raise BadRequest(
                        L_(
                            "The server %(server)r of %(name)s must be stopped before it is renamed.",
                            server=server,
                            name=name,
                        )
                    )
                if user.server_named(new_name) is not None:
                    raise Conflict(L_("%(name)s already has a server named %(server)r.", name=name, server=new_name))
                row.name = new_name
                row.container_id = row.container_name = row.url = None  # the old name's container is gone
            for table in (self._progress, self._secrets, self._spawns):
                table.pop((name, server), None)
            self._routed_shared.discard((name, server))
        for listener in self.on_server_renamed:  # after the locks: sharing's listeners call back in here
            try:
                await listener(name, server, new_name)
            except Exception:  # the rename is saved: one listener's fault must not make it look failed
                log.exception("after renaming the server %s: %r failed", names.server_label(name, server), listener)
        log.info("renamed the server %s to %r", names.server_label(name, server), new_name)

    # -- steps the reconciler calls after it looked ---------------------------------------------
    async def adopt(self, name: str, seen: Seen, *, rewrite_route: bool, server: str = "") -> None:
        """A running server whose container runs: keep it, and (re)write its route when asked."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return
            async with self.sessions() as session:
                row = await server_row(session, key)
                if row is None:
                    return
                shared = self.is_shared(name, server)
                route = route_of(name, row, self.settings.image(row.image_name), shared)
                self._secrets[key] = row.route_secret
            self._mark_routed(key, shared)
            log.info(
                "reconcile: %s the route of %s's running server",
                "rewriting" if rewrite_route else "adopting",
                names.server_label(name, server),
            )
            await self.proxy.add_route(route)

    async def adopt_gpus(self, name: str, seen: Seen, gpu_ids: tuple[str, ...], server: str = "") -> None:
        """A running server's container holds these GPUs (its label): the allocator learns them (after a restart)."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return
            if self.gpus.holding(gpu_key(key)) != gpu_ids:
                log.info("reconcile: %s holds GPUs %s", names.server_label(name, server), gpu_label(gpu_ids) or "none")
                if gpu_ids:
                    self.gpus.adopt(gpu_key(key), gpu_ids)
                else:
                    self._release_gpus(key)

    async def record_crash(self, name: str, seen: Seen, info: ServerInfo | None, server: str = "") -> None:
        """A running server whose container exited (or vanished): route gone, stopped, and the user told why."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return
            async with self.sessions() as session:
                row = await server_row(session, key)
                image = self.settings.image(row.image_name) if row else None
                chosen = resources.stored_options(row.user_options) if row else {}
            # a lost server's node is gone: its log cannot be read (and reading a service's log can hang then)
            tail = await self.spawner.logs(handle_from(info), LOG_TAIL_LINES) if info and not info.lost else ""
            log.warning("server of %s %s", names.server_label(name, server), what_happened(info))
            self._secrets.pop(key, None)
            await self.proxy.delete_route(names.server_slug(name, server))
            if info is not None:
                await self.spawner.stop(handle_from(info))
            self._release_gpus(key)
            await self._set(
                key,
                ServerState.STOPPED,
                url=None,
                container_id=None,
                gpu_ids=None,
                error=crash_message(info, image, chosen.get("mem_limit")),
                error_log=tail.rstrip() or None,
            )

    async def finish_interrupted(self, name: str, seen: Seen, info: ServerInfo | None, server: str = "") -> None:
        """A start or stop that a hub restart cut short: container removed, route removed, server stopped."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return
            log.warning(
                "finishing the interrupted %s of %s's server", seen.state.value, names.server_label(name, server)
            )
            async with self.sessions() as session:
                row = await server_row(session, key)
                recorded = handle_of(row) if row and (row.container_id or row.container_name) else None
            if info is not None:
                await self.spawner.stop(handle_from(info))
            elif recorded is not None:
                await self.spawner.stop(recorded)
            self._release_gpus(key)
            self._secrets.pop(key, None)
            await self.proxy.delete_route(names.server_slug(name, server))
            await self._set(
                key,
                ServerState.STOPPED,
                url=None,
                container_id=None,
                gpu_ids=None,
                error=N_(
                    "The hub restarted while your server was starting or stopping. Start it again; your files are kept."
                ),
            )

    async def remove_leftovers(
        self, name: str, seen: Seen, info: ServerInfo | None, routed: bool, server: str = ""
    ) -> None:
        """A server that is not running but left a container or a route behind."""
        key = (name, server)
        async with self._lock(key):
            if self.is_spawning(name, server) or not await self._still(key, seen):
                return
            if info is not None:
                log.warning(
                    "removing leftover container %s of %s", info.container_name, names.server_label(name, server)
                )
                await self.spawner.stop(handle_from(info))
            self._release_gpus(key)  # a server that is not running holds none
            if routed:
                self._secrets.pop(key, None)
                await self.proxy.delete_route(names.server_slug(name, server))

    # -- accounts going away ---------------------------------------------------------------------
    async def delete_user(
        self, name: str, delete_account: Callable[[str], Awaitable[None]], remove_files: bool = False
    ) -> None:
        """Stop every server of the user, delete the account and, if asked, its files: under the user's lock,
        so a start that races with the deletion either finishes first (and is stopped) or finds no account."""
        async with self._user_lock(name):
            volumes = await self._volumes_of(name)
            for server in sorted(await self._server_names(name) | self.spawning_servers(name)):
                async with self._lock((name, server)):
                    await self._stop_locked((name, server), None)
            await delete_account(name)
            for key in [key for key in self._progress if key[0] == name]:
                self._progress.pop(key, None)
            for key in [key for key in self._secrets if key[0] == name]:
                self._secrets.pop(key, None)
            for held in self.gpus.in_use():  # stopped above; nothing of the account may keep a GPU
                if held == name or held.startswith(f"{name}/"):
                    self.gpus.release(held)
        if remove_files:
            for volume in volumes:
                await self.spawner.remove_data(volume)
                log.info("removed the files of %s (%s)", name, volume)

    async def remove_data(self, name: str) -> None:
        """Delete the user's stored files (their volumes). The servers must be stopped."""
        async with self._user_lock(name):
            for volume in await self._volumes_of(name):
                await self.spawner.remove_data(volume)
                log.info("removed the files of %s (%s)", name, volume)

    async def _server_names(self, name: str) -> set[str]:
        async with self.sessions() as session:
            user = await get_user(session, name)
            return {row.name for row in user.servers} if user else set()

    async def _volumes_of(self, name: str) -> list[str]:
        """The account's volume and the named servers' own volumes."""
        async with self.sessions() as session:
            user = await get_user(session, name)
            if user is None:
                raise NotFound(L_("There is no user %(name)s.", name=name))
            found = [user.volume_name] if user.volume_name else []
            for row in user.servers:
                if row.volume_name and row.volume_name not in found:
                    found.append(row.volume_name)
            return found

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
                    await session.execute(
                        select(User.name, Server.name).join(User.servers).where(Server.state == ServerState.RUNNING)
                    )
                ).all()
            await asyncio.gather(*(self.stop(name, server=server) for name, server in running), return_exceptions=True)
