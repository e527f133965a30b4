"""The admin's usage page and the owner's usage line, in-process: who may see them, and what they show."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.config import Settings
from hub.keys import SERVERS, SESSIONS, TOKENS
from hub.models import ServerUsageSample, UsageSample, utcnow
from hub.usage import HOME_TIMEOUT, USAGE, ServerLoad
from tests.fakes import FakeSpawner
from tests.inprocess.pages import log_in

LIMITED: list[dict[str, Any]] = [
    {"name": "lab", "display_name": "Lab", "image": "fake/lab:1", "mem_limit": "2g", "cpu_limit": 1.0}
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The in-process hub's settings, with limits on its image."""
    return Settings(
        images=LIMITED,
        hub={"data_dir": tmp_path / "data"},
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


MIB = 1024**2


async def add_samples(client: TestClient) -> None:
    now = utcnow()
    async with client.app[SESSIONS].begin() as session:
        for minutes, running in ((50, 1), (30, 3), (10, 2), (0, 2)):
            session.add(UsageSample(taken=now - dt.timedelta(minutes=minutes), running=running))
        for user, server, cpu, memory in (("bob", "", 85.0, 900 * MIB), ("alice", "big", 3.0, 1500 * MIB)):
            session.add(
                ServerUsageSample(
                    taken=now,
                    user_name=user,
                    server_name=server,
                    cpu_percent=cpu,
                    memory_bytes=memory,
                    memory_limit_bytes=2048 * MIB,
                    cpu_limit=1.0,
                )
            )


async def test_only_admins_see_the_usage_page(app_client: TestClient) -> None:
    anonymous = await app_client.get("/hub/admin/usage", allow_redirects=False)
    assert anonymous.status in (302, 303) and "/hub/login" in anonymous.headers["Location"]
    await log_in(app_client, "alice")
    refused = await app_client.get("/hub/admin/usage")
    assert refused.status == 403
    assert "Only admins" in await refused.text()
    assert "usage-link" not in await (await app_client.get("/hub/home")).text()


async def test_the_page_draws_running_servers_the_heaviest_and_the_starts(app_client: TestClient) -> None:
    await start(app_client, "alice")
    await app_client.app[USAGE].sample()  # writes the finished start (the fake spawner has no stats)
    await add_samples(app_client)  # the newest sample: two servers measured

    await log_in(app_client, "admin")
    assert 'id="usage-link"' in await (await app_client.get("/hub/admin")).text()
    page = await app_client.get("/hub/admin/usage?period=hour")
    assert page.status == 200
    html = await page.text()
    running = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="running-chart"') :]
    assert "<polyline" in running[: running.index("</svg>")]
    assert '<title id="running-chart-title">Servers running, last hour</title>' in html
    assert 'aria-current="page">Last hour</a>' in html
    heaviest = html[html.index('id="heaviest-table"') :]
    rows = re.findall(r'<tr data-server="([^"]+)"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>', heaviest)
    assert rows == [
        ("bob", "85 % of one core (limit 1 core)", "900 MB of 2.0 GB"),
        ("alice/big", "3.0 % of one core (limit 1 core)", "1.5 GB of 2.0 GB"),
    ]
    assert "1 start(s) ended in this period; 0 failed." in html
    for chart in ("cpu-chart", "memory-chart", "durations-chart", "failures-chart"):
        assert f'id="{chart}"' in html and f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert "<script" not in html.split("<main", 1)[-1].split("</main>")[0]  # charts work without any script

    week = await (await app_client.get("/hub/admin/usage?period=week")).text()
    assert 'aria-current="page">Last week</a>' in week
    fallback = await (await app_client.get("/hub/admin/usage?period=<x>")).text()
    assert 'aria-current="page">Last day</a>' in fallback


async def start(client: TestClient, name: str, works: bool = True) -> None:
    token = (await client.app[TOKENS].create(name, "test"))[1]
    started = await client.post(
        f"/hub/api/users/{name}/server", json={"image": "lab"}, headers={"Authorization": f"token {token}"}
    )
    assert started.status in ((201, 202) if works else (500,)), await started.text()
    for _ in range(100):
        if not client.app[SERVERS].is_spawning(name):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}'s server did not start")


def usage_line(home: str) -> re.Match[str] | None:
    """The home page's usage paragraph: whether it is hidden, and the numbers in it."""
    return re.search(
        r'<p class="usage" id="usage" data-src="/hub/home/usage"( hidden)?>'
        r'Now: <span id="usage-now">([^<]*)</span></p>',
        home,
    )


async def test_the_owner_sees_cpu_and_memory_against_the_limits_on_the_home_page(app_client: TestClient) -> None:
    await start(app_client, "alice")
    counters = {"cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {"usage": 210 * MIB, "stats": {}}}

    async def stats(container: str) -> dict[str, Any]:
        return counters

    sampler = app_client.app[USAGE]
    sampler.read_stats, sampler.clock = stats, lambda: time.time() + 10  # read 10 s after the start: no CPU used
    await log_in(app_client, "alice")
    home = await (await app_client.get("/hub/home")).text()
    line = usage_line(home)
    assert line and line[1] and not line[2], home  # no reading yet: the line waits hidden for the page's script
    assert '<script src="/hub/static/usage.js"></script>' in home
    fresh = await app_client.get("/hub/home/usage")
    assert fresh.status == 200 and fresh.headers["Cache-Control"] == "no-store"
    words = (await fresh.json())["usage"]
    assert re.fullmatch(r"CPU 0\.0 % of 1 core · Memory 210 MB of 2\.0 GB", words), words
    line = usage_line(await (await app_client.get("/hub/home")).text())  # the hub keeps the reading
    assert line and not line[1] and line[2] == words

    await log_in(app_client, "bob")  # bob has no server: no line, and nothing to read
    assert 'id="usage"' not in await (await app_client.get("/hub/home")).text()
    assert await (await app_client.get("/hub/home/usage")).json() == {"usage": None}
    app_client.session.cookie_jar.clear()
    anonymous = await app_client.get("/hub/home/usage", allow_redirects=False)
    assert anonymous.status == 302 and "/hub/login" in anonymous.headers["Location"]


async def test_the_home_page_never_waits_for_dockers_stats(app_client: TestClient) -> None:
    """Docker hangs on a stats read: the page answers at once with the last reading; the script's fresh line
    gives up after HOME_TIMEOUT seconds with nothing, and the page still answers at once meanwhile."""
    await start(app_client, "alice")
    asked, never = asyncio.Event(), asyncio.Event()

    async def hanging(container: str) -> dict[str, Any]:
        asked.set()
        await never.wait()
        raise AssertionError("unreachable")

    sampler = app_client.app[USAGE]
    sampler.read_stats = hanging
    await log_in(app_client, "alice")
    began = time.monotonic()
    home = await app_client.get("/hub/home")
    assert home.status == 200 and time.monotonic() - began < 1.0
    assert not asked.is_set()  # the page did not ask Docker at all
    line = usage_line(await home.text())
    assert line and line[1], await home.text()

    fresh = asyncio.ensure_future(app_client.get("/hub/home/usage"))
    await asyncio.wait_for(asked.wait(), 5)  # the script's request waits on Docker now...
    began = time.monotonic()
    again = await app_client.get("/hub/home")  # ...and the page still answers at once
    assert again.status == 200 and time.monotonic() - began < 1.0
    answer = await asyncio.wait_for(fresh, HOME_TIMEOUT + 3)
    assert answer.status == 200 and await answer.json() == {"usage": None}

    taken = utcnow()  # the sampler's last round measured alice's server: the page shows it, still without Docker
    sampler.latest[("alice", "")] = ServerLoad("alice", "", 40.0, 300 * MIB, 2048 * MIB, 1.0, taken)
    began = time.monotonic()
    line = usage_line(await (await app_client.get("/hub/home")).text())
    assert time.monotonic() - began < 1.0
    assert line and not line[1] and line[2] == "CPU 40 % of 1 core · Memory 300 MB of 2.0 GB"


async def test_a_failed_start_is_counted_on_the_page(app_client: TestClient, spawner: FakeSpawner) -> None:
    spawner.fail_with = "The image is broken."
    await start(app_client, "bob", works=False)
    spawner.fail_with = None
    await start(app_client, "alice")
    await app_client.app[USAGE].sample()
    await log_in(app_client, "admin")
    html = await (await app_client.get("/hub/admin/usage")).text()
    assert "2 start(s) ended in this period; 1 failed." in html
    failures = html[html.index('id="failures-chart"') :]
    assert "<rect" in failures[: failures.index("</svg>")]
    assert "1 of 2 starts failed" in html
