"""Requests per second to a user's server through Traefik and forward auth, against the server on its own.

A real hub and a real Traefik (the test fixtures), the jupyterlab image built locally, one user logged in with
one server running. Then ``wrk -c10 -t2`` asks ``GET /user/<name>/api/status`` of
(a) the container straight (its own token, as the hub hands it to Traefik),
(b) Traefik with the user's hub API token (``Authorization: token ...``), and
(c) Traefik with the session cookie (``--cookie``), and
(d) Traefik alone (``--traefik-only``): a route of its own to the same container with no forward auth, the
    server's token put on by a headers middleware, and
(e) the same route with a forward auth that Traefik answers itself (its ``/ping``, also with ``--traefik-only``):
    the cost of forward auth's extra hop when the answer costs nothing. What (b) and (c) cost beyond (e) is the
    hub's.
The runs take turns (direct, proxy, direct, proxy, ...) so that the noise of a shared machine hits all of them;
the medians and the ratios proxy / direct are printed, with the hub's CPU seconds during the proxied runs.
Goal: through Traefik at least 0.8x of the direct figure.

    .venv/bin/python benchmarks/throughput.py --repeat 3 [--cookie] [--duration 10]

Needs wrk (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import docker
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BENCH_PASSWORD, our_hub
from hub.security import SESSION_COOKIE
from tests.fixtures.docker import ROOT, build_cached, remove_run_objects
from tests.fixtures.hub import HubProcess

USER = "bench"
PASSWORD = BENCH_PASSWORD


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces; fields after it start at 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, headers: dict[str, str], *, connections: int, threads: int, duration: int) -> float:
    """Requests per second that wrk reports; non-2xx answers make the run fail (they would flatter the figure)."""
    command = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=duration + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr or result.stdout}")
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk met errors against {url}:\n{result.stdout}")
    found = re.search(r"Requests/sec:\s*([\d.]+)", result.stdout)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{result.stdout}")
    return float(found.group(1))


async def log_in_and_spawn(hub: HubProcess) -> str:
    """Log the user in, start the jupyterlab server and wait until it answers; the session cookie's value."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        page = await (await http.get(f"{hub.url}/hub/login")).text()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        await http.post(f"{hub.url}/hub/login", data={"_xsrf": xsrf, "username": USER, "password": PASSWORD})
        page = await (await http.get(f"{hub.url}/hub/spawn")).text()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        await http.post(f"{hub.url}/hub/spawn", data={"_xsrf": xsrf, "image": "jupyterlab"}, allow_redirects=False)
        async with http.get(f"{hub.url}/hub/api/users/{USER}/server/progress") as stream:
            async for line in stream.content:
                if line.startswith(b"data: ") and json.loads(line[6:]).get("ready"):
                    break
        async with http.get(f"{hub.url}/user/{USER}/api/status") as response:
            assert response.status == 200, f"through Traefik: {response.status}"
        cookie = next((morsel.value for morsel in jar if morsel.key == SESSION_COOKIE), None)
        assert cookie, "no session cookie after logging in"
        return cookie


def container_address_and_token(client: docker.DockerClient, prefix: str, network: str) -> tuple[str, str]:
    """The user's container's address on the hub's network and the token it accepts (JUPYTER_TOKEN)."""
    containers = client.containers.list(filters={"name": prefix})
    assert len(containers) == 1, f"expected one container named {prefix}*, found {len(containers)}"
    attrs = containers[0].attrs
    address = attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    return f"http://{address}:8888", env["JUPYTER_TOKEN"]


BARE_HOST = "bare.localhost"
INSTANT_AUTH_HOST = "instant-auth.localhost"


def write_bare_routes(dynamic_dir: Path, traefik_api: str, server_url: str, server_token: str) -> None:
    """Two routes straight to the user's server, the server's token put on by Traefik (as forward auth's answer
    has it put on for the hub's routes): for BARE_HOST with no forward auth, and for INSTANT_AUTH_HOST with a
    forward auth that Traefik answers itself (its ``/ping``): the hop's cost with an answer that costs nothing."""
    token = {"headers": {"customRequestHeaders": {"Authorization": f"token {server_token}"}}}
    instant = {"forwardAuth": {"address": f"{traefik_api}/ping"}}
    route = {
        "http": {
            "routers": {
                f"bench-{name}": {
                    "rule": f"Host(`{host}`)",
                    "entryPoints": ["web"],
                    "priority": 1_000_000,
                    "service": "bench-bare",
                    "middlewares": middlewares,
                }
                for name, host, middlewares in (
                    ("bare", BARE_HOST, ["bench-token"]),
                    ("instant-auth", INSTANT_AUTH_HOST, ["bench-instant-auth", "bench-token"]),
                )
            },
            "middlewares": {"bench-token": token, "bench-instant-auth": instant},
            "services": {"bench-bare": {"loadBalancer": {"servers": [{"url": server_url}]}}},
        }
    }
    (dynamic_dir / "bench-bare.yaml").write_text(yaml.safe_dump(route))


async def wait_until_served(url: str, headers: dict[str, str], timeout: float = 15) -> None:
    """Until Traefik has read the new route and the server answers through it."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url, headers=headers, allow_redirects=False) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} still answers {response.status} after {timeout} s")
            await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of direct and proxied runs, taking turns")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cookie", action="store_true", help="also run through Traefik with the session cookie")
    parser.add_argument(
        "--traefik-only",
        action="store_true",
        help="also run through Traefik alone, and with an instant forward auth (the floors)",
    )
    parser.add_argument("--keep-log", action="store_true", help="print where the hub's log is and keep it")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again.")

    client = docker.from_env()
    base = os.environ.get("HUB_TEST_BASE_IMAGE", "hub-ci-base:bookworm")
    image = build_cached(client, ROOT / "images" / "jupyterlab", base, "jupyterlab")
    prefix = f"bench{secrets.token_hex(3)}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    hub = our_hub(workdir, prefix, image)
    traefik = hub.traefik
    try:
        hub.start()
        assert hub.process is not None
        cookie = await log_in_and_spawn(hub)
        hub_token = hub.token(USER)
        direct_url, server_token = container_address_and_token(client, prefix, f"{prefix}-net")
        path = f"/user/{USER}/api/status"

        kinds_url = {"direct": direct_url + path, "proxy-token": traefik.web_url + path}
        kinds_headers = {
            "direct": {"Authorization": f"token {server_token}"},
            "proxy-token": {"Authorization": f"token {hub_token}"},
        }
        if args.cookie:
            kinds_url["proxy-cookie"] = traefik.web_url + path
            kinds_headers["proxy-cookie"] = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        if args.traefik_only:
            write_bare_routes(traefik.dynamic_dir, traefik.api_url, direct_url, server_token)
            for kind, host in (("traefik-only", BARE_HOST), ("instant-auth", INSTANT_AUTH_HOST)):
                kinds_url[kind], kinds_headers[kind] = traefik.web_url + path, {"Host": host}
                await wait_until_served(kinds_url[kind], kinds_headers[kind])
        kinds = list(kinds_url)
        figures: dict[str, list[float]] = {kind: [] for kind in kinds}
        hub_cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
        for kind in kinds:  # warm-up: connections, caches, the server's first requests
            wrk(kinds_url[kind], kinds_headers[kind], connections=args.connections, threads=args.threads, duration=2)
        for number in range(args.repeat):
            order = kinds[number % len(kinds) :] + kinds[: number % len(kinds)]  # each kind takes each place
            for kind in order:
                before = cpu_seconds(hub.process.pid)
                figures[kind].append(
                    wrk(
                        kinds_url[kind],
                        kinds_headers[kind],
                        connections=args.connections,
                        threads=args.threads,
                        duration=args.duration,
                    )
                )
                hub_cpu[kind].append(cpu_seconds(hub.process.pid) - before)
                time.sleep(1)
            print(
                f"round {number + 1}: "
                + ", ".join(
                    f"{kind} {figures[kind][-1]:.0f} req/s (hub cpu {hub_cpu[kind][-1]:.1f} s)" for kind in kinds
                ),
                flush=True,
            )
        direct = statistics.median(figures["direct"])
        for kind in kinds:
            median = statistics.median(figures[kind])
            line = f"{kind}: median {median:.0f} req/s over {args.repeat} runs of {args.duration} s"
            if kind != "direct":
                line += f", ratio to direct {median / direct:.2f}"
                rounds = sorted(mine / theirs for mine, theirs in zip(figures[kind], figures["direct"], strict=True))
                line += f" (round by round {statistics.median(rounds):.2f}, {rounds[0]:.2f}-{rounds[-1]:.2f})"
                line += f", hub CPU {statistics.median(hub_cpu[kind]):.1f} s per run"
            print(line)
    finally:
        hub.stop()
        traefik.stop()
        remove_run_objects(client, prefix)
        if args.keep_log:
            print(f"hub log: {hub.log_path}, traefik log: {traefik.log_path}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
