"""The admin's usage page in numbers: periods, time buckets, medians. Pure functions over what hub/usage.py stored."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.i18n import N_
from hub.models import SpawnRecord

MAX_POINTS = 240
"""Most points the running-servers line gets: longer periods keep each stretch's highest count."""


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    label: str
    seconds: int
    bucket_seconds: int
    """The width of one bar of starts and failures."""
    tick_format: str


PERIODS = {
    "hour": Period("hour", N_("Last hour"), 3600, 300, "%H:%M"),
    "day": Period("day", N_("Last day"), 86400, 3600, "%H:%M"),
    "week": Period("week", N_("Last week"), 7 * 86400, 6 * 3600, "%a %H:%M"),
}
DEFAULT_PERIOD = "day"


@dataclass(frozen=True, slots=True)
class SpawnBucket:
    """The starts that ended within one stretch of time."""

    start: dt.datetime
    count: int
    failed: int
    median: float | None
    p90: float | None


def period_of(key: str | None) -> Period:
    """The period a page asked for (?period=hour|day|week); anything else: the default."""
    return PERIODS.get(key or "", PERIODS[DEFAULT_PERIOD])


def window(period: Period, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """From where the first bucket starts (a whole multiple of the bucket width) to now."""
    end = now.timestamp()
    start = math.floor((end - period.seconds) / period.bucket_seconds + 1) * period.bucket_seconds
    return dt.datetime.fromtimestamp(start, dt.UTC), now


def quantile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank quantile (0.5: the median) of some numbers; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def spawn_buckets(records: Iterable[SpawnRecord], period: Period, now: dt.datetime) -> list[SpawnBucket]:
    """Starts per bucket of the period: how many, how many failed, the median and 90th percentile of the
    durations of those that worked."""
    start, _ = window(period, now)
    count = math.ceil((now - start).total_seconds() / period.bucket_seconds) or 1
    durations: list[list[float]] = [[] for _ in range(count)]
    totals, failures = [0] * count, [0] * count
    for record in records:
        finished = record.finished if record.finished.tzinfo else record.finished.replace(tzinfo=dt.UTC)
        index = int((finished - start).total_seconds() // period.bucket_seconds)
        if not 0 <= index < count:
            continue
        totals[index] += 1
        if record.ok:
            durations[index].append(record.seconds)
        else:
            failures[index] += 1
    return [
        SpawnBucket(
            start + dt.timedelta(seconds=index * period.bucket_seconds),
            totals[index],
            failures[index],
            quantile(durations[index], 0.5),
            quantile(durations[index], 0.9),
        )
        for index in range(count)
    ]


def running_points(
    counts: Sequence[tuple[dt.datetime, int]], period: Period, now: dt.datetime
) -> list[tuple[float, float]]:
    """(epoch seconds, servers running) to draw; at most MAX_POINTS, each the highest count of its stretch."""
    start, _ = window(period, now)
    width = max(period.seconds / MAX_POINTS, 1)
    highest: dict[int, tuple[float, int]] = {}
    for taken, running in counts:
        if taken < start:
            continue
        slot = int((taken - start).total_seconds() // width)
        if slot not in highest or running > highest[slot][1]:
            highest[slot] = (taken.timestamp(), running)
    return [(moment, float(running)) for moment, running in (highest[slot] for slot in sorted(highest))]


def ticks(period: Period, now: dt.datetime, count: int = 6) -> list[tuple[float, str]]:
    """Labels along the time axis, at whole buckets."""
    start, _ = window(period, now)
    span = (now - start).total_seconds()
    step = max(round(span / count / period.bucket_seconds), 1) * period.bucket_seconds
    moments = [start + dt.timedelta(seconds=offset) for offset in range(0, int(span) + 1, step)]
    return [(moment.timestamp(), moment.strftime(period.tick_format)) for moment in moments]


def size(value: float | None) -> str:
    """Bytes for people: 210 MB, 1.5 GB (powers of 1024, as Docker's limits are)."""
    if value is None:
        return "—"
    for unit, power in (("GB", 3), ("MB", 2), ("kB", 1)):
        if value >= 1024**power:
            shown = value / 1024**power
            return f"{shown:.1f} {unit}" if shown < 10 else f"{shown:.0f} {unit}"
    return f"{value:.0f} B"


def cpus(value: float | None) -> str:
    return "—" if value is None else f"{value:g} core" + ("" if value == 1 else "s")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %" if value >= 10 else f"{value:.1f} %"


def cpu_words(cpu_percent: float | None, cpu_limit: float | None) -> str:
    """``CPU 12 % of 1 core`` (a share of the limit), or of one core when the server has no CPU limit."""
    if cpu_percent is None:
        return "CPU not measured yet"
    if cpu_limit:
        return f"CPU {percent(cpu_percent / cpu_limit)} of {cpus(cpu_limit)}"
    return f"CPU {percent(cpu_percent)} of one core (no limit)"


def memory_words(used: int, limit: int | None) -> str:
    return f"Memory {size(used)} of {size(limit)}" if limit else f"Memory {size(used)} (no limit)"
