"""/hub/admin/usage: what the hub's servers use, as charts drawn here (hub/svg_charts.py) with their numbers."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp_jinja2
from aiohttp import web

from hub import svg_charts
from hub.handlers.admin import require_admin_user
from hub.i18n import L_, LN_, N_, Text, gettext_for
from hub.keys import SESSIONS, SETTINGS
from hub.models import ServerUsageSample, utcnow
from hub.usage import finished_spawns, latest_loads, running_counts
from hub.usage_report import (
    PERIODS,
    SpawnBucket,
    cpus,
    percent,
    period_of,
    running_points,
    size,
    spawn_buckets,
    ticks,
    window,
)

routes = web.RouteTableDef()
HEAVIEST = 10
IN_A_SENTENCE = {"hour": N_("last hour"), "day": N_("last day"), "week": N_("last week")}
"""Each period as the charts' titles name it."""


def server_label(row: ServerUsageSample) -> str:
    return f"{row.user_name}/{row.server_name}" if row.server_name else row.user_name


@dataclass(frozen=True, slots=True)
class Heavy:
    """One server in the "heaviest" lists, with its numbers in words."""

    server: str
    cpu: float
    cpu_text: str
    memory: int
    memory_text: str


def heavy(row: ServerUsageSample) -> Heavy:
    if row.cpu_percent is None:
        cpu: str = N_("not measured yet")
    elif row.cpu_limit:
        cpu = L_("%(percent)s of one core (limit %(cpus)s)", percent=percent(row.cpu_percent), cpus=cpus(row.cpu_limit))
    else:
        cpu = L_("%(percent)s of one core", percent=percent(row.cpu_percent))
    memory = size(row.memory_bytes)
    if row.memory_limit_bytes:
        memory = L_("%(used)s of %(limit)s", used=memory, limit=size(row.memory_limit_bytes))
    return Heavy(server_label(row), row.cpu_percent or 0.0, cpu, row.memory_bytes, memory)


def heaviest(loads: list[ServerUsageSample]) -> dict[str, list[Heavy]]:
    """The servers using the most CPU and the most memory, most first."""
    rows = [heavy(row) for row in loads]
    return {
        "cpu": sorted(rows, key=lambda row: (-row.cpu, row.server))[:HEAVIEST],
        "memory": sorted(rows, key=lambda row: (-row.memory, row.server))[:HEAVIEST],
    }


def per_bucket(buckets: list[SpawnBucket], first: float, width: int, which: str) -> list[tuple[float, float | None]]:
    """(middle of each bucket, its median or 90th percentile) for a line."""
    return [(first + (index + 0.5) * width, getattr(bucket, which)) for index, bucket in enumerate(buckets)]


@routes.get("/hub/admin/usage", name="admin_usage")
async def usage_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    translate = gettext_for(request)  # the charts' words in the admin's language
    sessions, settings = request.app[SESSIONS], request.app[SETTINGS]
    period, now = period_of(request.query.get("period")), utcnow()
    during = Text(IN_A_SENTENCE.get(period.key, period.label))
    since, _ = window(period, now)
    span = (since.timestamp(), now.timestamp())
    axis = ticks(period, now)

    counts = await running_counts(sessions, since)
    points = running_points(counts, period, now)
    running_chart = svg_charts.line_chart(
        "running-chart",
        translate(L_("Servers running, %(period)s", period=during)),
        translate(
            LN_(
                "%(num)d sample; at most %(most)d servers at once, %(last)d at the last sample.",
                "%(num)d samples; at most %(most)d servers at once, %(last)d at the last sample.",
                len(counts),
                most=max((int(y) for _, y in points), default=0),
                last=int(points[-1][1]) if points else 0,
            )
        ),
        [svg_charts.Series(translate(N_("Servers running")), points)],
        span,
        axis,
    )

    buckets = spawn_buckets(await finished_spawns(sessions, since), period, now)
    started = sum(bucket.count for bucket in buckets)
    failed = sum(bucket.failed for bucket in buckets)
    durations_chart = svg_charts.line_chart(
        "durations-chart",
        translate(L_("Start durations, %(period)s", period=during)),
        translate(
            L_(
                "Median and 90th percentile of the seconds a start took, per %(minutes)d minutes; %(worked)d starts "
                "worked.",
                minutes=period.bucket_seconds // 60,
                worked=started - failed,
            )
        ),
        [
            svg_charts.Series(translate(N_("Median")), per_bucket(buckets, span[0], period.bucket_seconds, "median")),
            svg_charts.Series(
                translate(N_("90th percentile")), per_bucket(buckets, span[0], period.bucket_seconds, "p90")
            ),
        ],
        span,
        axis,
        unit=" s",
    )
    failures_chart = svg_charts.bar_chart(
        "failures-chart",
        translate(L_("Failed starts, %(period)s", period=during)),
        translate(
            L_(
                "%(failed)d of %(started)d starts failed, counted per %(minutes)d minutes.",
                failed=failed,
                started=started,
                minutes=period.bucket_seconds // 60,
            )
        ),
        [(bucket.start.strftime(period.tick_format), float(bucket.failed)) for bucket in buckets],
        label_every=max(len(buckets) // 6, 1),
    )

    loads = list(await latest_loads(sessions))
    top = heaviest(loads)
    measured = loads[0].taken.strftime("%Y-%m-%d %H:%M:%S UTC") if loads else None
    cpu_chart = svg_charts.hbar_chart(
        "cpu-chart",
        translate(N_("Heaviest servers by CPU")),
        translate(N_("Percent of one CPU each server used at the last sample, most first.")),
        [(row.server, row.cpu, percent(row.cpu)) for row in top["cpu"]],
    )
    memory_chart = svg_charts.hbar_chart(
        "memory-chart",
        translate(N_("Heaviest servers by memory")),
        translate(N_("Memory each server used at the last sample, most first.")),
        [(row.server, float(row.memory), translate(row.memory_text)) for row in top["memory"]],
    )
    context = {
        "periods": PERIODS.values(),
        "period": period,
        "enabled": settings.usage.enabled,
        "sample_seconds": settings.usage.sample_seconds,
        "keep_days": settings.usage.keep_days,
        "running_chart": running_chart,
        "running_rows": [(taken.strftime("%Y-%m-%d %H:%M:%S"), running) for taken, running in counts[-200:]],
        "durations_chart": durations_chart,
        "failures_chart": failures_chart,
        "buckets": [bucket for bucket in buckets if bucket.count],
        "started": started,
        "failed": failed,
        "cpu_chart": cpu_chart,
        "memory_chart": memory_chart,
        "heaviest": top,
        "measured": measured,
    }
    return aiohttp_jinja2.render_template("admin_usage.html", request, context)
