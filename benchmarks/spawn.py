"""Time from "Start" to "route live" for N users at once, against the container's own start time.

The baseline is the same image started with the same command straight from the docker SDK, timed
until it answers HTTP. The hub's time is from the POST of the spawn form until the progress stream
says ready (which the hub sends only once Traefik lists the route) and the server's first answer
through Traefik has come back. Goals (issue 14): one user <= 1.03x; 30 at once: median <= 0.75x,
last <= 1.0x; the hub's CPU for a 30-user round <= 3 s.

    .venv/bin/python benchmarks/spawn.py --users 1 --repeat 5 [--steps]
    .venv/bin/python benchmarks/spawn.py --users 30 --repeat 3
    .venv/bin/python benchmarks/spawn.py --users 10 --repeat 2 --backend swarm

With ``--backend swarm`` the hub starts each server as a one-replica Swarm service (issue 12) on a one-node Swarm of
the local daemon (made for the run when the daemon is in none, and left as found); the floor stays the bare
container, so the figures stand beside the single-host ones.

With ``--repeat N`` the baseline and the hub take turns (the baseline first in even rounds, the hub first in odd
ones), because order and cache warmth move single figures by 10-20 %; the ratios are taken over all rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BENCH_PASSWORD, our_hub
from hub.config import ImageSpec
from hub.docker_spawner import container_command
from tests.fixtures.docker import ROOT, build_cached, remove_run_objects
from tests.fixtures.hub import HubProcess
from tests.fixtures.swarm import single_node_swarm


def baseline(client: docker.DockerClient, image: str, prefix: str, network: str, users: int, tag: str) -> list[float]:
    """Seconds from `docker create` until the bare Jupyter server answers, for N containers started at once
    by hand (the same load the hub meets), without hub, proxy or queue."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=users) as pool:
        return list(
            pool.map(lambda number: bare_start(client, image, network, prefix, f"{tag}-{number}"), range(users))
        )


def bare_start(client: docker.DockerClient, image: str, network: str, prefix: str, number: str) -> float:
    import urllib.request

    spec = ImageSpec(name="jl", image=image)
    token = secrets.token_hex(8)
    began = time.perf_counter()
    container = client.containers.create(
        image,
        container_command(spec, "/user/base/"),
        name=f"{prefix}-base-{number}",
        network=network,
        environment={"JUPYTER_TOKEN": token},
        labels={"hub.test-run": prefix},
        init=True,
        user="1000:1000",
    )
    container.start()
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    while True:
        try:
            request = urllib.request.Request(
                f"http://{address}:8888/user/base/api", headers={"Authorization": f"token {token}"}
            )
            urllib.request.urlopen(request, timeout=1)
            break
        except OSError:
            time.sleep(0.02)
    elapsed = time.perf_counter() - began
    container.remove(force=True)
    return elapsed


async def log_in(hub: HubProcess, name: str) -> tuple[aiohttp.ClientSession, str]:
    """A logged-in session and its spawn form's XSRF value. The logins go one after the other, before the clock
    starts: the hub counts logins still being checked per client address, and every user here is 127.0.0.1."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await http.get(f"{hub.url}/hub/login")).text()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    await http.post(f"{hub.url}/hub/login", data={"_xsrf": xsrf, "username": name, "password": BENCH_PASSWORD})
    page = await (await http.get(f"{hub.url}/hub/spawn")).text()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return http, xsrf


async def user_spawn(
    hub: HubProcess, name: str, http: aiohttp.ClientSession, xsrf: str, steps: list[tuple[float, str]] | None = None
) -> float:
    """Seconds from the spawn form's POST to the first answer through Traefik; ``steps`` gets each progress
    message with its time."""
    async with http:
        began = time.perf_counter()
        await http.post(f"{hub.url}/hub/spawn", data={"_xsrf": xsrf, "image": "jupyterlab"}, allow_redirects=False)
        async with http.get(f"{hub.url}/hub/api/users/{name}/server/progress") as stream:
            async for line in stream.content:
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                if steps is not None:
                    steps.append((time.perf_counter() - began, str(event.get("message", ""))))
                if event.get("ready"):
                    break
        async with http.get(f"{hub.url}/user/{name}/api/status") as response:  # the page served through Traefik
            assert response.status == 200, f"{name}: {response.status}"
        elapsed = time.perf_counter() - began
        if steps is not None:
            steps.append((elapsed, "first answer through Traefik"))
        async with http.delete(  # not timed: the next round starts from no servers, as the baseline does
            f"{hub.url}/hub/api/users/{name}/server", headers={"X-XSRF-Token": xsrf, "Origin": hub.url}
        ) as stopped:
            assert stopped.status in (202, 204), f"{name}: stop {stopped.status}"
        return elapsed


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--slots", type=int, default=8, help="lifecycle.concurrent_spawns of the hub")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of baseline and hub, taking turns")
    parser.add_argument("--backend", choices=("docker", "swarm"), default="docker", help="the hub's spawner.backend")
    parser.add_argument("--steps", action="store_true", help="with --users 1: the time of each progress step")
    args = parser.parse_args()
    client = docker.from_env()
    prefix = f"bench{secrets.token_hex(3)}"
    if args.backend == "swarm":
        with single_node_swarm(client, prefix) as network:
            await measure(args, client, prefix, {"backend": "swarm", "network": network})
    else:
        await measure(args, client, prefix, {})


async def measure(args: argparse.Namespace, client: docker.DockerClient, prefix: str, spawner: dict[str, str]) -> None:
    """Rounds of the bare containers and of the hub, taking turns; prints the medians and ratios."""
    base = os.environ.get("HUB_TEST_BASE_IMAGE", "hub-ci-base:bookworm")
    image = build_cached(client, ROOT / "images" / "jupyterlab", base, "jupyterlab")
    hub = our_hub(Path(tempfile.mkdtemp()), prefix, image, lifecycle={"concurrent_spawns": args.slots}, spawner=spawner)
    traefik = hub.traefik
    try:
        hub.start()
        base_rounds: list[list[float]] = []
        hub_rounds: list[list[float]] = []
        hub_cpu: list[float] = []
        base_network = f"{prefix}-base-net"
        client.networks.create(base_network, labels={"hub.test-run": prefix})

        async def hub_round(number: int) -> None:
            names = [f"user{number}x{n}" for n in range(args.users)]
            assert hub.process is not None
            logged_in = [await log_in(hub, name) for name in names]
            cpu_before = cpu_seconds(hub.process.pid)
            steps: list[tuple[float, str]] | None = [] if args.steps and args.users == 1 else None
            spawns = (user_spawn(hub, name, *session, steps) for name, session in zip(names, logged_in, strict=True))
            hub_rounds.append(list(await asyncio.gather(*spawns)))
            hub_cpu.append(cpu_seconds(hub.process.pid) - cpu_before)
            for seconds, message in steps or []:
                print(f"    {seconds:6.3f} s  {message}")

        def base_round(number: int) -> None:
            base_rounds.append(baseline(client, image, prefix, base_network, args.users, f"r{number}"))

        for number in range(args.repeat):
            if number % 2 == 0:
                base_round(number)
                await hub_round(number)
            else:
                await hub_round(number)
                base_round(number)
            bare_round, hub_round_median = statistics.median(base_rounds[-1]), statistics.median(hub_rounds[-1])
            print(
                f"round {number + 1}: bare median {bare_round:.2f} s, hub median {hub_round_median:.2f} s "
                f"(this round {hub_round_median / bare_round:.2f}x)"
            )
        bare_median = statistics.median(statistics.median(times) for times in base_rounds)
        hub_median = statistics.median(statistics.median(times) for times in hub_rounds)
        bare_last = statistics.median(max(times) for times in base_rounds)
        hub_last = statistics.median(max(times) for times in hub_rounds)
        print(f"bare containers, {args.users} at once: median {bare_median:.2f} s, last {bare_last:.2f} s")
        print(
            f"through the hub ({args.backend}), {args.users} at once: median {hub_median:.2f} s, last {hub_last:.2f} s"
        )
        print(f"ratio (hub median / bare median): {hub_median / bare_median:.2f}")
        print(f"ratio (hub last / bare last): {hub_last / bare_last:.2f}")
        print(f"hub CPU per round (start, serve and stop {args.users}): median {statistics.median(hub_cpu):.2f} s")
    finally:
        hub.stop()
        traefik.stop()
        remove_run_objects(client, prefix)


if __name__ == "__main__":
    asyncio.run(main())
