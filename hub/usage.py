"""What servers use, sampled by the hub: the numbers behind /hub/admin/usage and the owner's line on the home page.

Every ``usage.sample_seconds`` the sampler counts the running servers and reads each one's CPU and memory from
Docker (``GET /containers/{id}/stats?stream=false&one-shot=true``: one quick read, a few at a time in threads of
its own, never on the event loop). CPU is the share of one CPU used since the read before (Docker's counter of
CPU nanoseconds, divided by the time between the reads); memory is what the container uses less the file
cache it can drop, as ``docker stats`` shows it. Finished starts (how long, whether they worked) come from the
server manager and are written with the next sample. Rows older than ``usage.keep_days`` are deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select

from hub.config import ImageSpec, UsageSection
from hub.db import Sessionmaker
from hub.models import Server, ServerState, ServerUsageSample, SpawnRecord, UsageSample, User, utcnow
from hub.resource_config import memory_bytes
from hub.servers import limits_of
from hub.spawner import Spawner
from hub.usage_report import cpu_words, memory_words

log = logging.getLogger(__name__)
FRESH_SECONDS = 5.0
"""The owner's fresh line (GET /hub/home/usage) reads Docker again when the last reading is older than this."""
PRUNE_SECONDS = 3600.0
HOME_TIMEOUT = 2.0
"""Seconds the fresh line waits for Docker at most; the home page itself never waits."""
MAX_WAITING = 10_000
"""Most finished starts kept for the next write while the database is away (the oldest go first)."""
MIN_INTERVAL = 0.5
"""Seconds two readings must be apart for the CPU share between them to mean something."""
STATS_THREADS = 4
"""Containers read at once: Docker answers one-shot reads quickly, and the spawner's threads stay free."""

StatsReader = Callable[[str], Awaitable[dict[str, Any] | None]]
"""Docker's stats of one container by id, or None when it is gone."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of a container's counters: CPU nanoseconds since it started, memory in use, when (epoch seconds)."""

    cpu_ns: int
    memory_bytes: int
    at: float


@dataclass(frozen=True, slots=True)
class ServerLoad:
    """What one server used at one moment, with the limits it was started with (None: no limit)."""

    user: str
    server: str
    cpu_percent: float | None
    """Percent of one CPU (150: one and a half CPUs); None when not known yet."""
    memory_bytes: int
    memory_limit_bytes: int | None
    cpu_limit: float | None
    taken: dt.datetime


@dataclass(frozen=True, slots=True)
class FinishedStart:
    """A start that ended, waiting to be written with the next sample."""

    finished: dt.datetime
    user: str
    server: str
    image: str
    seconds: float
    worked: bool


@dataclass(frozen=True, slots=True)
class Target:
    """A running server to read: whose, which container, its limits, since when it runs."""

    user: str
    server: str
    container: str
    memory_limit_bytes: int | None
    cpu_limit: float | None
    started: float | None


def memory_used(stats: dict[str, Any]) -> int | None:
    """Memory in use less the inactive file cache (cgroup v2 ``inactive_file``, v1 ``total_inactive_file``)."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if not isinstance(usage, int):
        return None
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    return max(usage - int(cache or 0), 0)


def reading_of(stats: dict[str, Any] | None, at: float) -> Reading | None:
    """The counters in Docker's stats of a running container; None for a stopped one (Docker sends zeros)."""
    if not stats:
        return None
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = memory_used(stats)
    if not isinstance(cpu, int) or memory is None:
        return None
    return Reading(cpu, memory, at)


def cpu_percent(before: Reading | None, after: Reading) -> float | None:
    """Percent of one CPU used between two readings; None without a usable earlier one."""
    if before is None or after.at - before.at < MIN_INTERVAL or after.cpu_ns < before.cpu_ns:
        return None
    return round((after.cpu_ns - before.cpu_ns) / ((after.at - before.at) * 1e9) * 100, 1)


def target_of(server: Server, user: str, image: ImageSpec | None) -> Target | None:
    """What to read of a server row: its container and the limits it got (chosen at start, else its image's)."""
    if not server.container_id:
        return None
    limits = limits_of(server)
    mem = limits.mem_limit if limits is not None else (image.mem_limit if image else None)
    cpus = limits.cpu_limit if limits is not None else (image.cpu_limit if image else None)
    started = aware(server.started).timestamp() if server.started else None
    return Target(user, server.name, server.container_id, memory_bytes(mem) if mem else None, cpus, started)


class DockerStats:
    """One-shot stats reads through the Docker spawner's client, at most STATS_THREADS at once."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._one_shot = True
        self._executor = ThreadPoolExecutor(max_workers=STATS_THREADS, thread_name_prefix="usage")

    async def __call__(self, container: str) -> dict[str, Any] | None:
        import docker.errors

        def read() -> dict[str, Any] | None:
            api = self._client().api
            try:
                if self._one_shot:
                    return dict(api.stats(container, stream=False, one_shot=True))
                return dict(api.stats(container, stream=False))  # Docker before API 1.41: about 2 s per read
            except docker.errors.InvalidVersion:
                self._one_shot = False
                return dict(api.stats(container, stream=False))
            except docker.errors.NotFound:
                return None

        return await asyncio.get_running_loop().run_in_executor(self._executor, read)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def stats_reader_for(spawner: Spawner) -> DockerStats | None:
    """Docker's stats when the hub starts servers with Docker; other spawners have none (only counts are kept)."""
    import sys

    module = sys.modules.get("hub.docker_spawner")
    if module is None or not isinstance(spawner, module.DockerSpawner):
        return None
    return DockerStats(spawner.client)


class UsageSampler:
    """Samples the running servers, keeps the records, and answers what a server uses right now."""

    def __init__(
        self,
        settings: UsageSection,
        sessions: Sessionmaker,
        image: Callable[[str], ImageSpec | None],
        read_stats: StatsReader | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.image = image
        self.read_stats = read_stats
        self.clock = clock
        self.latest: dict[tuple[str, str], ServerLoad] = {}
        """The last reading of each running server, by (user, server)."""
        self._readings: dict[str, Reading] = {}
        """The last counters of each container, by id: the CPU share is measured from one to the next."""
        self._shares: dict[str, float | None] = {}
        self._spawns: list[FinishedStart] = []
        self._pruned = 0.0

    # -- writing -------------------------------------------------------------------------------
    def record_spawn(self, user: str, server: str, image: str, seconds: float, worked: bool) -> None:
        """A start ended (ServerManager.on_spawn_finished); written with the next sample."""
        del self._spawns[: max(len(self._spawns) - MAX_WAITING + 1, 0)]
        self._spawns.append(FinishedStart(utcnow(), user, server, image, seconds, worked))

    async def run(self) -> None:
        """Sample every ``sample_seconds`` while the hub runs; a failed round is logged and the next one comes."""
        while True:
            began = time.monotonic()
            try:
                await self.sample()
                if time.monotonic() - self._pruned >= PRUNE_SECONDS or not self._pruned:
                    await self.prune()
                    self._pruned = time.monotonic()
            except Exception as exc:  # Docker or the database away for a moment: the next round tries again
                log.warning("could not sample what servers use: %s", getattr(exc, "detail", exc))
            await asyncio.sleep(max(self.settings.sample_seconds - (time.monotonic() - began), 0.5))

    async def sample(self) -> list[ServerLoad]:
        """One round: count the running servers, read each, and write it all with the starts that ended."""
        taken = utcnow()
        targets = await self._running()
        loads = [load for load in await asyncio.gather(*(self._measure(t, taken) for t in targets)) if load]
        spawns, self._spawns = self._spawns, []
        try:
            async with self.sessions.begin() as session:
                session.add(UsageSample(taken=taken, running=len(targets)))
                session.add_all(
                    ServerUsageSample(
                        taken=taken,
                        user_name=load.user,
                        server_name=load.server,
                        cpu_percent=load.cpu_percent,
                        memory_bytes=load.memory_bytes,
                        memory_limit_bytes=load.memory_limit_bytes,
                        cpu_limit=load.cpu_limit,
                    )
                    for load in loads
                )
                session.add_all(
                    SpawnRecord(
                        finished=start.finished,
                        user_name=start.user,
                        server_name=start.server,
                        image_name=start.image,
                        seconds=start.seconds,
                        ok=start.worked,
                    )
                    for start in spawns
                )
        except Exception:  # the database away for a moment: the starts wait for the next round
            self._spawns[:0] = spawns[-MAX_WAITING:]
            raise
        self.latest = {(load.user, load.server): load for load in loads}
        running = {target.container for target in targets}
        self._readings = {key: value for key, value in self._readings.items() if key in running}
        self._shares = {key: value for key, value in self._shares.items() if key in running}
        return loads

    async def prune(self, now: dt.datetime | None = None) -> int:
        """Delete samples and records older than ``keep_days``; returns how many rows went."""
        before = (now or utcnow()) - dt.timedelta(days=self.settings.keep_days)
        removed = 0
        async with self.sessions.begin() as session:
            for table, column in (
                (UsageSample, UsageSample.taken),
                (ServerUsageSample, ServerUsageSample.taken),
                (SpawnRecord, SpawnRecord.finished),
            ):
                result = await session.execute(delete(table).where(column < before))
                removed += int(getattr(result, "rowcount", 0) or 0)
        if removed:
            log.info("deleted %d usage rows older than %g days", removed, self.settings.keep_days)
        return removed

    # -- reading -------------------------------------------------------------------------------
    async def _running(self, user: str | None = None, server: str | None = None) -> list[Target]:
        query = select(Server, User.name).join(User).where(Server.state == ServerState.RUNNING)
        if user is not None:
            query = query.where(User.name == user, Server.name == (server or ""))
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        found = (target_of(row, name, self.image(row.image_name)) for row, name in rows)
        return [target for target in found if target is not None]

    async def _measure(self, target: Target, taken: dt.datetime) -> ServerLoad | None:
        if self.read_stats is None:
            return None
        try:
            reading = reading_of(await self.read_stats(target.container), self.clock())
        except Exception as exc:  # one container that cannot be read does not spoil the round
            log.warning("could not read Docker's stats of %s's server: %s", target.user, getattr(exc, "detail", exc))
            return None
        if reading is None:
            return None
        before = self._readings.get(target.container)
        if before is None and target.started is not None:  # first read: the average since the server started
            before = Reading(0, 0, target.started)
        share = cpu_percent(before, reading)
        if share is None and before is not None and reading.at - before.at < MIN_INTERVAL:
            share = self._shares.get(target.container)  # read again too soon to measure: the last share stands
        else:
            self._readings[target.container], self._shares[target.container] = reading, share
        return ServerLoad(
            target.user,
            target.server,
            share,
            reading.memory_bytes,
            target.memory_limit_bytes,
            target.cpu_limit,
            taken,
        )

    async def current(self, user: str, server: str = "") -> ServerLoad | None:
        """What the user's server uses now, for their home page: the last sample when it is fresh, else a new read
        (kept for FRESH_SECONDS). None when the server is not running or nothing can be read."""
        if not self.settings.enabled or self.read_stats is None:
            return None
        known = self.latest.get((user, server))
        if known is not None and (utcnow() - known.taken).total_seconds() < FRESH_SECONDS:
            return known
        targets = await self._running(user, server)
        if not targets:
            return None
        load = await self._measure(targets[0], utcnow())
        if load is not None:
            self.latest[(user, server)] = load
        return load

    def close(self) -> None:
        if isinstance(self.read_stats, DockerStats):
            self.read_stats.close()


def measures(app: web.Application) -> bool:
    """Whether the hub reads what servers use (sampling on, servers started with Docker)."""
    sampler = app.get(USAGE)
    return sampler is not None and sampler.settings.enabled and sampler.read_stats is not None


def usage_words(load: ServerLoad) -> str:
    """``CPU 12 % of 1 core · Memory 210 MB of 2 GB``."""
    return f"{cpu_words(load.cpu_percent, load.cpu_limit)} · {memory_words(load.memory_bytes, load.memory_limit_bytes)}"


def last_usage(app: web.Application, user: str, server: str = "", since: dt.datetime | None = None) -> str | None:
    """The owner's line on the home page from the last reading the hub has, without asking Docker (the page
    never waits for it; hub/static/usage.js asks for a fresh one after the page has loaded). None when there is
    none yet, or it was taken before ``since`` (the server's start: a reading of an earlier run)."""
    if not measures(app):
        return None
    load = app[USAGE].latest.get((user, server))
    if load is None or (since is not None and load.taken < aware(since)):
        return None
    return usage_words(load)


async def own_usage(app: web.Application, user: str, server: str = "") -> str | None:
    """The owner's line read now (the last reading when it is fresh), for the home page's script; None when there
    is nothing to say (sampling off, server not running, Docker slow or away: at most HOME_TIMEOUT seconds)."""
    sampler = app.get(USAGE)
    if sampler is None:
        return None
    try:
        load = await asyncio.wait_for(sampler.current(user, server), HOME_TIMEOUT)
    except Exception as exc:
        log.debug("no usage for %s's home page: %s", user, exc)
        return None
    return usage_words(load) if load is not None else None


# -- what the admin's page reads ---------------------------------------------------------------------
async def running_counts(sessions: Sessionmaker, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
    async with sessions() as session:
        query = select(UsageSample.taken, UsageSample.running).where(UsageSample.taken >= since)
        rows = (await session.execute(query.order_by(UsageSample.taken))).all()
    return [(aware(taken), running) for taken, running in rows]


async def finished_spawns(sessions: Sessionmaker, since: dt.datetime) -> list[SpawnRecord]:
    async with sessions() as session:
        query = select(SpawnRecord).where(SpawnRecord.finished >= since).order_by(SpawnRecord.finished)
        return list((await session.execute(query)).scalars())


async def latest_loads(sessions: Sessionmaker) -> Sequence[ServerUsageSample]:
    """Every server's reading in the newest sample (none when no server ran then)."""
    async with sessions() as session:
        newest = (await session.execute(select(func.max(UsageSample.taken)))).scalar_one_or_none()
        if newest is None:
            return []
        query = select(ServerUsageSample).where(ServerUsageSample.taken == newest)
        return list((await session.execute(query)).scalars())


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


USAGE = web.AppKey("usage", UsageSampler)
