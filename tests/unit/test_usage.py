"""Usage sampling: Docker's stats read as people read them, starts in buckets, old rows deleted, the sampler's round."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.config import ImageSpec, UsageSection
from hub.db import Sessionmaker, open_database
from hub.models import Server, ServerState, ServerUsageSample, SpawnRecord, UsageSample, User, utcnow
from hub.usage import Reading, UsageSampler, cpu_percent, latest_loads, memory_used, reading_of, running_counts
from hub.usage_report import PERIODS, cpu_words, memory_words, quantile, running_points, spawn_buckets

GIB = 1024**3


def stats(cpu_ns: int, usage: int, inactive: int = 0, v1: bool = False) -> dict[str, Any]:
    key = "total_inactive_file" if v1 else "inactive_file"
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}},
        "memory_stats": {"usage": usage, "stats": {key: inactive}},
    }


def test_memory_is_what_docker_stats_shows_without_the_file_cache() -> None:
    assert memory_used(stats(0, 300_000_000, 90_000_000)) == 210_000_000
    assert memory_used(stats(0, 300_000_000, 90_000_000, v1=True)) == 210_000_000
    assert memory_used({"memory_stats": {}}) is None  # a stopped container: Docker sends nothing
    assert reading_of({"cpu_stats": {}, "memory_stats": {}}, 1.0) is None


def test_cpu_is_the_share_of_one_core_between_two_readings() -> None:
    before, after = Reading(1_000_000_000, 0, 100.0), Reading(1_600_000_000, 0, 110.0)
    assert cpu_percent(before, after) == 6.0  # 0.6 s of CPU in 10 s
    assert cpu_percent(Reading(0, 0, 100.0), Reading(15_000_000_000, 0, 110.0)) == 150.0  # 1.5 cores
    assert cpu_percent(None, after) is None
    assert cpu_percent(after, before) is None  # a restarted container's counter went back


def test_the_owner_reads_usage_against_the_limits() -> None:
    assert f"{cpu_words(12.0, 1.0)} · {memory_words(210 * 1024**2, 2 * GIB)}" == (
        "CPU 12 % of 1 core · Memory 210 MB of 2.0 GB"
    )
    assert cpu_words(150.0, 2.0) == "CPU 75 % of 2 cores"
    assert cpu_words(3.25, None) == "CPU 3.2 % of one core (no limit)"
    assert cpu_words(None, 1.0) == "CPU not measured yet"
    assert memory_words(5 * 1024**2, None) == "Memory 5.0 MB (no limit)"


def record(minutes_ago: float, seconds: float, ok: bool, now: dt.datetime) -> SpawnRecord:
    finished = now - dt.timedelta(minutes=minutes_ago)
    return SpawnRecord(finished=finished, user_name="a", server_name="", image_name="lab", seconds=seconds, ok=ok)


def test_starts_fall_into_their_hour_with_median_and_90th_percentile() -> None:
    now = dt.datetime(2026, 5, 4, 12, 30, tzinfo=dt.UTC)
    records = [record(5, seconds, True, now) for seconds in (1, 2, 3, 4, 10)] + [
        record(5, 99, False, now),
        record(65, 7, True, now),
        record(60 * 30, 1, True, now),  # older than a day: not in the picture
    ]
    buckets = spawn_buckets(records, PERIODS["day"], now)
    assert len(buckets) == 24 and buckets[-1].start == dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)
    last = buckets[-1]
    assert (last.count, last.failed, last.median, last.p90) == (6, 1, 3, 10)  # the failure's 99 s left out
    assert (buckets[-2].count, buckets[-2].median) == (1, 7)
    assert sum(bucket.count for bucket in buckets) == 7
    assert quantile([], 0.5) is None and quantile([5.0], 0.9) == 5.0


def test_a_week_of_samples_becomes_a_line_of_at_most_240_peaks() -> None:
    now = dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)
    counts = [(now - dt.timedelta(minutes=minute), minute % 7) for minute in range(7 * 24 * 60)]
    points = running_points(sorted(counts), PERIODS["week"], now)
    assert 200 <= len(points) <= 241
    assert max(value for _, value in points) == 6 and min(value for _, value in points) == 6  # peaks kept
    assert [moment for moment, _ in points] == sorted(moment for moment, _ in points)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Sessionmaker]:
    engine, factory = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite'}")
    yield factory
    await engine.dispose()


async def count(sessions: Sessionmaker, table: Any) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_rows_older_than_keep_days_are_deleted(sessions: Sessionmaker) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        for days in (0.5, 6.9, 7.1, 40):
            taken = now - dt.timedelta(days=days)
            session.add(UsageSample(taken=taken, running=1))
            session.add(ServerUsageSample(taken=taken, user_name="a", server_name="", memory_bytes=1))
            session.add(record(days * 24 * 60, 1.0, True, now))
    sampler = UsageSampler(UsageSection(keep_days=7), sessions, lambda name: None, None)
    assert await sampler.prune(now) == 6
    for table in (UsageSample, ServerUsageSample, SpawnRecord):
        assert await count(sessions, table) == 2, table


async def test_a_round_counts_running_servers_reads_each_and_writes_finished_starts(sessions: Sessionmaker) -> None:
    started = utcnow() - dt.timedelta(seconds=10)
    async with sessions.begin() as session:
        alice, bob = User(name="alice"), User(name="bob")
        session.add_all([alice, bob])
        await session.flush()
        common = {"route_secret": "s", "state": ServerState.RUNNING, "started": started}
        session.add(Server(user_id=alice.id, image_name="lab", container_id="c-alice", **common))
        session.add(Server(user_id=bob.id, image_name="lab", container_id="c-bob", name="big", **common))
        session.add(Server(user_id=bob.id, image_name="lab", container_id=None, route_secret="s"))  # stopped
    counters = {"c-alice": stats(2_000_000_000, 300 * 1024**2), "c-bob": None}  # bob's is gone meanwhile

    async def read(container: str) -> dict[str, Any] | None:
        return counters[container]

    image = ImageSpec(name="lab", image="x", mem_limit="1g", cpu_limit=1.0)
    clock = [time.time()]
    sampler = UsageSampler(UsageSection(), sessions, lambda name: image, read, clock=lambda: clock[0])
    sampler.record_spawn("alice", "", "lab", 4.5, True)
    sampler.record_spawn("bob", "big", "lab", 120.0, False)
    loads = await sampler.sample()
    assert len(loads) == 1
    first = loads[0]
    assert (first.user, first.server, first.memory_bytes) == ("alice", "", 300 * 1024**2)
    assert first.memory_limit_bytes == GIB and first.cpu_limit == 1.0
    assert first.cpu_percent is not None and 15 <= first.cpu_percent <= 21  # 2 s of CPU in about 10 s since start
    assert [count for _, count in await running_counts(sessions, started)] == [2]
    assert [row.user_name for row in await latest_loads(sessions)] == ["alice"]
    assert await count(sessions, SpawnRecord) == 2

    counters["c-alice"] = stats(2_000_000_000, 100 * 1024**2)
    assert await sampler.current("alice") == first  # the sample is fresh: no new read
    sampler.latest.clear()
    again = await sampler.current("alice")  # read again at once: too soon to measure CPU, the last share stands
    assert again is not None and again.cpu_percent == first.cpu_percent and again.memory_bytes == 100 * 1024**2
    clock[0] += 10
    counters["c-alice"] = stats(3_000_000_000, 100 * 1024**2)  # 1 s of CPU in the 10 s since
    sampler.latest.clear()
    later = await sampler.current("alice")
    assert later is not None and later.cpu_percent == 10.0
    assert await sampler.current("bob") is None  # bob's default server is not running
    assert await count(sessions, SpawnRecord) == 2  # written once


class AwayOnce:
    """The database, away for the first write."""

    def __init__(self, sessions: Sessionmaker) -> None:
        self.sessions, self.away = sessions, True

    def __call__(self) -> Any:
        return self.sessions()

    def begin(self) -> Any:
        if self.away:
            self.away = False
            raise OSError("the database is away")
        return self.sessions.begin()


async def test_starts_wait_for_the_next_round_when_the_database_is_away(sessions: Sessionmaker) -> None:
    sampler = UsageSampler(UsageSection(), AwayOnce(sessions), lambda name: None, None)  # type: ignore[arg-type]
    sampler.record_spawn("alice", "", "lab", 3.0, True)
    with pytest.raises(OSError, match="away"):
        await sampler.sample()
    sampler.record_spawn("bob", "", "lab", 9.0, False)
    await sampler.sample()
    async with sessions() as session:
        written = (await session.execute(select(SpawnRecord.user_name, SpawnRecord.ok))).all()
    assert sorted(written) == [("alice", True), ("bob", False)]
