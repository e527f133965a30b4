"""A multi-node Swarm on one machine: servers placed on two workers, one worker killed, its servers reported lost.

    sudo .venv/bin/python -m benchmarks.swarm_multinode          # about 3 minutes on 2 cores; needs root

What it makes (every name starts with a fresh run prefix ``mnXXXXXX``, and everything is removed at the end, also
after a failure):

1. a node image built FROM the local base image (``hub-ci-base:bookworm``, or $HUB_TEST_BASE_IMAGE) with Debian's
   docker.io, containerd and runc installed from ``.deb`` files that ``apt-get download`` fetches on this host (no
   container registry);
2. a SEPARATE Swarm of three Docker-in-Docker containers (every capability but one, no seccomp) on their own
   bridge network: one manager (paused, so servers go to the workers) and two workers. The host's Docker daemon
   never joins it;
3. the user image (the base image with a tiny web app, as in tests/swarm) loaded into every node
   (``docker save | docker exec -i NODE docker load``);
4. the hub and its Traefik, run from this working tree with ``spawner.backend: swarm`` and ``spawner.address:
   name`` against the manager's Docker API. Servers on other nodes are reachable only over the overlay network, so
   both processes run on the host but inside the network namespace of a small container of the manager that is
   attached to the overlay network (``nsenter``), with the overlay's DNS (127.0.0.11) as their resolver: that is
   where the hub runs in a real cluster (docker-stack.yml);
5. four users start servers (spread over the two workers), and a fifth starts one that never answers; the worker
   where that fifth start waits is killed (``docker kill``); the check waits until the hub shows each of that
   worker's users their server stopped with the "stopped answering (node …)" reason and the waiting start fails
   with it, while the other worker's servers still answer through Traefik; a lost user's start again is refused in
   plain words (their files are on the dead node), ``hub swarm-unpin`` lets it go elsewhere, and it starts on the
   surviving worker.

One line per measurement, then PASS or FAIL (exit status 0 or 1). ``--keep`` leaves everything for a look.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import our_hub  # noqa: E402
from tests.fixtures.docker import BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE, ECHO_SERVER, RUN_LABEL  # noqa: E402
from tests.fixtures.hub import HubProcess  # noqa: E402

PACKAGES = [
    "docker.io", "containerd", "runc", "tini", "iptables", "libip4tc2", "libip6tc2", "libxtables12", "libmnl0",
    "libnetfilter-conntrack3", "libnfnetlink0", "libnftnl11", "netbase", "libdevmapper1.02.1", "dmsetup", "lsb-base",
]  # fmt: skip
"""docker.io and what it needs beyond the base image (Debian bookworm)."""
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY debs/ /tmp/debs/
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs
COPY node-entrypoint /usr/local/bin/node-entrypoint
ENTRYPOINT ["/usr/local/bin/node-entrypoint"]
"""
ENTRYPOINT = """\
#!/bin/sh
# A Swarm node in a privileged container: its own dockerd on its own /var/lib/docker (a volume).
mount -t securityfs none /sys/kernel/security 2>/dev/null || true
for hierarchy in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$hierarchy"; done  # cgroup v1: nested cgroups
exec dockerd --host=unix:///var/run/docker.sock "$@"
"""
NODE_CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "AUDIT_READ",
]  # fmt: skip
"""A node's container gets these instead of ``--privileged`` (which fails here: the host's Docker daemon lacks
CAP_SYS_RESOURCE, "unable to apply caps"): what dockerd in a container needs, but none that reach the machine
everyone shares (its clock, kernel modules, reboot, kernel log, wake alarms, MAC policy)."""
INSIDE_TIMEOUT = 900
"""Seconds the check inside the overlay may take; then its process group (hub, Traefik) is ended."""
PASSWORD = "multinode-pass"
USERS = ["alice", "bob", "carol", "dave"]
NODE_DOWN_TIMEOUT = 90
REPORT_TIMEOUT = 120


def say(what: str) -> None:
    print(what, flush=True)


def timed(began: float) -> str:
    return f"{time.monotonic() - began:.1f} s"


# -- outside: build, the Docker-in-Docker Swarm, cleanup --------------------------------------------------------------
class Cluster:
    """The DinD nodes on the host daemon; ``node_api(name)`` talks to a node's own dockerd through its socket."""

    def __init__(self, host: docker.DockerClient, prefix: str, base: str) -> None:
        self.host, self.prefix, self.base = host, prefix, base
        self.image = f"{prefix}-node:latest"
        self.network = f"{prefix}-net"
        self.labels = {RUN_LABEL: prefix}
        self.nodes = [f"{prefix}-manager", f"{prefix}-worker1", f"{prefix}-worker2"]

    def build(self, workdir: Path) -> None:
        context = workdir / "node-image"
        (context / "debs").mkdir(parents=True)
        subprocess.run(["apt-get", "download", "-q", *PACKAGES], cwd=context / "debs", check=True, capture_output=True)
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "node-entrypoint").write_text(ENTRYPOINT)
        (context / "node-entrypoint").chmod(0o755)
        self.host.images.build(
            path=str(context),
            tag=self.image,
            buildargs={"BASE_IMAGE": self.base},
            labels=self.labels,
            rm=True,
            forcerm=True,  # a failed step's container too (it carries no label for clean())
        )

    def start_nodes(self) -> None:
        self.host.networks.create(self.network, driver="bridge", labels=self.labels)
        for name in self.nodes:  # the CLI: the SDK has no systempaths=unconfined (no masked /proc, writable /sys)
            self.host.volumes.create(f"{name}-docker", labels=self.labels)
            options = ["--cap-add=" + cap for cap in NODE_CAPABILITIES] + [
                f"--security-opt={option}"
                for option in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined")
            ]
            subprocess.run(
                ["docker", "run", "-d", "--name", name, "--hostname", name, "--network", self.network,
                 "--label", f"{RUN_LABEL}={self.prefix}", "--device-cgroup-rule", "a *:* rwm",
                 "-v", f"{name}-docker:/var/lib/docker", *options, self.image],
                check=True, capture_output=True,
            )  # fmt: skip
        for name in self.nodes:
            self.wait_for_dockerd(name)

    def pid(self, name: str) -> int:
        return int(self.host.containers.get(name).attrs["State"]["Pid"])

    def socket(self, name: str) -> str:
        """The node's Docker socket as this host sees it (a Unix socket works from any network namespace)."""
        return f"/proc/{self.pid(name)}/root/run/docker.sock"  # /var/run is a link, read in our root

    def node_api(self, name: str) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{self.socket(name)}", timeout=30)

    def ip(self, name: str) -> str:
        return str(self.host.containers.get(name).attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    def wait_for_dockerd(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.node_api(name).ping():
                    return
            except (docker.errors.DockerException, OSError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"dockerd in {name} did not start: {self.host.containers.get(name).logs(tail=20)!r}")

    def form_swarm(self) -> str:
        manager = self.node_api(self.nodes[0])
        manager.swarm.init(advertise_addr=self.ip(self.nodes[0]), listen_addr="0.0.0.0:2377")
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for name in self.nodes[1:]:
            self.node_api(name).swarm.join([f"{self.ip(self.nodes[0])}:2377"], token, advertise_addr=self.ip(name))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = [n for n in manager.nodes.list() if n.attrs["Status"]["State"] == "ready"]
            if len(ready) == len(self.nodes):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("the workers did not join the Swarm")
        return str(manager.nodes.list(filters={"role": "manager"})[0].id)

    def pause_manager(self) -> None:
        """No new tasks on the manager, so users' servers go to the workers (``pause``, not ``drain``: a drained node
        would also drop the network attachment of the anchor container)."""
        node = self.node_api(self.nodes[0]).nodes.list(filters={"role": "manager"})[0]
        spec = node.attrs["Spec"]
        spec["Availability"] = "pause"
        node.update(spec)

    def load(self, image: str) -> None:
        data = b"".join(self.host.images.get(image).save(named=True))
        for name in self.nodes:
            subprocess.run(
                ["docker", "exec", "-i", name, "docker", "load", "-q"], input=data, check=True, capture_output=True
            )

    def anchor(self, overlay: str) -> str:
        """A small container of the manager on the overlay network; returns its network namespace's path."""
        manager = self.node_api(self.nodes[0])
        manager.networks.create(overlay, driver="overlay", attachable=True, labels=self.labels)
        container = manager.containers.run(
            self.base, ["sleep", "infinity"], name=f"{self.prefix}-anchor", detach=True, network=overlay, init=True
        )
        container.reload()
        sandbox = re.sub(r"^/var/run/", "/run/", container.attrs["NetworkSettings"]["SandboxKey"])
        return f"/proc/{self.pid(self.nodes[0])}/root{sandbox}"

    def clean(self) -> list[str]:
        """Remove every container, volume, network and image of this run (each on its own: one failure does not
        keep the others); returns what could not be removed."""
        label: dict[str, str | list[str] | bool] = {"label": f"{RUN_LABEL}={self.prefix}"}
        left: list[str] = []
        steps: list[tuple[str, Any]] = []
        for container in self.host.containers.list(all=True, filters=label):
            steps.append((f"container {container.name}", lambda c=container: c.remove(force=True, v=True)))
        for volume in self.host.volumes.list(filters=label):
            steps.append((f"volume {volume.name}", lambda v=volume: v.remove(force=True)))
        for network in self.host.networks.list(filters=label):
            steps.append((f"network {network.name}", network.remove))
        for image in self.host.images.list(filters=label):
            steps.append((f"image {image.id}", lambda i=str(image.id): self.host.images.remove(i, force=True)))
        for what, remove in steps:
            try:
                remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                left.append(f"{what}: {exc}")
        return left


def outside(args: argparse.Namespace) -> int:
    host = docker.from_env(timeout=300)
    base = os.environ.get(BASE_IMAGE_ENV, DEFAULT_BASE_IMAGE)
    prefix = f"mn{secrets.token_hex(3)}"
    cluster = Cluster(host, prefix, base)
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    say(f"run prefix: {prefix} (work folder {workdir})")
    began = time.monotonic()
    try:
        step = time.monotonic()
        cluster.build(workdir)
        say(f"node image built from {base} with Debian's docker.io: {timed(step)}")
        step = time.monotonic()
        cluster.start_nodes()
        say(f"3 Docker-in-Docker nodes running: {timed(step)}")
        step = time.monotonic()
        manager_id = cluster.form_swarm()
        say(f"Swarm formed (1 manager, 2 workers ready): {timed(step)}")
        step = time.monotonic()
        cluster.load(base)
        say(f"user image {base} loaded into 3 nodes: {timed(step)}")
        overlay = f"{prefix}-users"
        netns = cluster.anchor(overlay)
        cluster.pause_manager()
        state = {
            "prefix": prefix,
            "base": base,
            "overlay": overlay,
            "manager_socket": cluster.socket(cluster.nodes[0]),
            "manager_id": manager_id,
            "workers": cluster.nodes[1:],
            "workdir": str(workdir),
        }
        (workdir / "state.json").write_text(json.dumps(state))
        resolv = workdir / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.11\noptions ndots:0\n")
        command = [
            "nsenter", f"--net={netns}", "unshare", "--mount", "--propagation", "private",
            "sh", "-c", 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"', "sh", str(resolv),
            sys.executable, "-m", "benchmarks.swarm_multinode", "--inside", str(workdir / "state.json"),
        ]  # fmt: skip
        child = subprocess.Popen(command, cwd=ROOT, start_new_session=True)  # its own group: ended as one
        try:
            returncode = child.wait(timeout=INSIDE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)  # the group this script started: the check, its hub and Traefik
            child.wait(30)
            say(f"FAIL: the check did not end within {INSIDE_TIMEOUT} s")
            return 1
        say(f"whole check: {timed(began)}")
        return returncode
    except Exception as exc:
        say(f"FAIL: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if args.keep:
            say(f"kept everything with the prefix {prefix}")
        else:
            step = time.monotonic()
            left = cluster.clean()
            shutil.rmtree(workdir, ignore_errors=True)
            say(f"cleaned up (containers, volumes, network, node image of {prefix}): {timed(step)}")
            for what in left:
                say(f"NOT removed: {what}")


# -- inside: the hub on the overlay network ---------------------------------------------------------------------------
class Person:
    def __init__(self, hub: HubProcess, name: str) -> None:
        self.hub, self.name = hub, name
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.xsrf = ""

    async def log_in(self) -> None:
        page = await (await self.http.get(f"{self.hub.url}/hub/login")).text()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        data = {"_xsrf": xsrf, "username": self.name, "password": PASSWORD}
        await self.http.post(f"{self.hub.url}/hub/login", data=data)
        page = await (await self.http.get(f"{self.hub.url}/hub/spawn")).text()
        self.xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    async def start(self, image: str = "echo") -> dict[str, Any]:
        """Start the server and follow its progress; the last event (``ready`` or ``failed``)."""
        data = {"_xsrf": self.xsrf, "image": image}
        await self.http.post(f"{self.hub.url}/hub/spawn", data=data, allow_redirects=False)
        last: dict[str, Any] = {}
        async with self.http.get(f"{self.hub.url}/hub/api/users/{self.name}/server/progress") as stream:
            async for line in stream.content:
                if line.startswith(b"data: "):
                    last = json.loads(line[6:])
        return last

    async def answers(self) -> bool:
        async with self.http.get(f"{self.hub.url}/user/{self.name}/hello") as response:
            return response.status == 200

    async def home(self) -> str:
        return await (await self.http.get(f"{self.hub.url}/hub/home")).text()


def node_of(manager: docker.DockerClient, prefix: str, name: str) -> str:
    """The hostname of the node running the user's server (its newest task)."""
    services = manager.services.list(filters={"label": [f"hub.prefix={prefix}", f"hub.username={name}"]})
    if not services:
        return ""
    tasks = sorted(services[0].tasks(), key=lambda task: task["Version"]["Index"])
    node_id = tasks[-1].get("NodeID", "") if tasks else ""
    return str(manager.nodes.get(node_id).attrs["Description"]["Hostname"]) if node_id else ""


async def wait_until(check: Any, timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(interval)
    return None


async def inside(state_path: Path) -> int:
    state = json.loads(state_path.read_text())
    prefix, workdir = state["prefix"], Path(state["workdir"])
    manager = docker.DockerClient(base_url=f"unix://{state['manager_socket']}", timeout=60)
    host = docker.from_env(timeout=60)
    problems: list[str] = []
    image = {
        "name": "echo", "image": state["base"], "jupyter": False, "port": 8000, "default_url": "/",
        "volume_mount": "/data", "mem_limit": "128m", "command": ["python3", "-c", ECHO_SERVER],
    }  # fmt: skip
    slow = {**image, "name": "slow", "command": ["sh", "-c", 'sleep 300; exec "$@"', "sh", *image["command"]]}
    overlay = {"backend": "swarm", "network": state["overlay"], "address": "name"}
    hub = our_hub(  # Traefik starts here; the hub in check()
        workdir,
        prefix,
        state["base"],
        lifecycle={"reconcile_interval": 2},
        spawner={**overlay, "docker_url": f"unix://{state['manager_socket']}"},
        images=[image, slow],
        password=PASSWORD,
    )
    try:
        return await check(state, hub, manager, host, prefix, problems)
    finally:
        hub.traefik.stop()


async def check(
    state: dict[str, Any],
    hub: HubProcess,
    manager: docker.DockerClient,
    host: docker.DockerClient,
    prefix: str,
    problems: list[str],
) -> int:
    """Spawn on the workers, kill one, and check what the hub reports (Traefik runs; the caller stops it)."""
    people = [Person(hub, name) for name in USERS]
    starting = Person(hub, "eve")
    try:
        hub.start()
        for person in [*people, starting]:
            await person.log_in()
        placed: dict[str, str] = {}
        for person in people:  # one after the other: Swarm spreads them over the workers by count
            step = time.monotonic()
            last = await person.start()
            placed[person.name] = node_of(manager, prefix, person.name)
            ok = last.get("ready") is True and await person.answers()
            say(f"spawn {person.name}: {timed(step)} on {placed[person.name]} ({'answers' if ok else last})")
            if not ok:
                problems.append(f"{person.name} did not start: {last}")
        # eve's server never answers (it sleeps first): its node is the one killed while her start waits.
        eve = asyncio.create_task(starting.start("slow"))

        async def eve_placed() -> str:
            return node_of(manager, prefix, "eve")

        victim = await wait_until(eve_placed, 60) or placed[USERS[0]]
        if victim not in state["workers"]:  # it is killed on the host's daemon: only ever one of this run's nodes
            raise RuntimeError(f"eve's server is on {victim!r}, not on one of this run's workers")
        await asyncio.sleep(2)  # her task is running, the hub waits for an answer
        lost = [name for name, where in placed.items() if where == victim]
        kept = [name for name, where in placed.items() if where and where != victim]
        say(f"servers per worker: {victim}: {lost} and eve's start; other: {kept}")
        if not kept or not lost:
            problems.append("every server landed on one worker")

        killed = time.monotonic()
        host.containers.get(victim).kill()
        say(f"killed worker {victim} (docker kill)")

        async def node_down() -> bool:
            found = [n for n in manager.nodes.list() if n.attrs["Description"]["Hostname"] == victim]
            return bool(found) and found[0].attrs["Status"]["State"] == "down"

        if await wait_until(node_down, NODE_DOWN_TIMEOUT):
            say(f"Swarm marked {victim} down after {timed(killed)}")
        else:
            problems.append(f"Swarm did not mark {victim} down within {NODE_DOWN_TIMEOUT} s")
        for person in people:
            if person.name not in lost:
                continue

            async def reported(person: Person = person) -> str:
                page = await person.home()
                return page if 'data-state="stopped"' in page and "stopped answering" in page else ""

            page = await wait_until(reported, REPORT_TIMEOUT)
            if page:
                reason = re.search(r"The machine your server ran on[^<]*", page)
                say(f"{person.name} reported lost after {timed(killed)}: {reason.group(0) if reason else '?'}")
            else:
                problems.append(f"{person.name}'s server was not reported lost within {REPORT_TIMEOUT} s")
        for person in people:
            if person.name in kept:
                up = await person.answers()
                say(f"{person.name} on {placed[person.name]} still answers: {up}")
                if not up:
                    problems.append(f"{person.name} on the surviving worker stopped answering")

        try:
            last = await asyncio.wait_for(eve, REPORT_TIMEOUT)
        except TimeoutError:
            last = {"message": f"still waiting after {REPORT_TIMEOUT} s"}
        failed = last.get("failed") and "stopped answering" in str(last.get("message"))
        say(f"eve's start (on {victim}) failed after {timed(killed)}: {str(last.get('message'))[:140]}")
        if not failed:
            problems.append(f"eve's start on the lost node did not fail with the lost node's reason: {last}")

        first = next(person for person in people if person.name in lost)
        step = time.monotonic()
        last = await first.start()
        refused = last.get("failed") and "not available" in str(last.get("message"))
        say(f"{first.name} starts again, files on {victim}: refused in {timed(step)}: {str(last.get('message'))[:160]}")
        if not refused:
            problems.append(f"{first.name}'s start with files on the dead node was not refused in plain words: {last}")
        unpinned = hub.cli("swarm-unpin", first.name)
        say(f"hub swarm-unpin {first.name}: {unpinned.stdout.strip()[:160]}")
        step = time.monotonic()
        last = await first.start()
        where = node_of(manager, prefix, first.name)
        ok = last.get("ready") is True and await first.answers() and where not in ("", victim)
        say(f"{first.name} started again on {where} in {timed(step)}: {'answers' if ok else last}")
        if not ok:
            problems.append(f"{first.name} did not start again on the surviving worker")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        for person in [*people, starting]:
            await person.http.close()
        hub.stop()  # SIGTERM, then SIGKILL after 15 s: no process of this run is left behind
    if problems:
        say("hub log tail:\n" + "\n".join(hub.log().splitlines()[-30:]))
    say("FAIL: " + "; ".join(problems) if problems else "PASS")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the nodes, network and image for a look")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return asyncio.run(inside(args.inside))
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
