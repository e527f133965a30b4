"""Behavioural fakes of the spawner and the proxy, for fast in-process tests of the hub's rules.

They keep the contracts of ``hub.spawner.Spawner`` and ``hub.proxy.Proxy`` (idempotent stop, a
route live when ``add_route`` returns) and can be told to be slow, to fail, or to crash a running
server, so concurrency rules can be tested in milliseconds. Every capability also has a test
against the real Docker daemon and the real Traefik (tests/integration, tests/e2e).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.images import ImageProvider, ImageWork, build_percent
from hub.names import server_label
from hub.proxy import Proxy, Route
from hub.spawner import AddressKnown, Report, ServerHandle, ServerInfo, Spawner, SpawnRequest

_ids = itertools.count(1)


@dataclass
class FakeServer:
    request: SpawnRequest
    handle: ServerHandle
    running: bool = True
    exit_code: int | None = None
    oom_killed: bool = False
    log: str = "fake server log\n"


@dataclass
class FakeSpawner(Spawner):
    start_delay: float = 0.0
    """Seconds each start takes (the start can be cancelled meanwhile)."""
    fail_with: str | None = None
    """When set, starts fail with this message (and a log tail)."""
    reachable: bool = True
    servers: dict[str, FakeServer] = field(default_factory=dict)
    """Containers that exist, by user name (``alice``), or ``alice/x`` for her server named x."""
    started: list[str] = field(default_factory=list)
    removed_volumes: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, starts wait until it is set (to hold a start in flight as long as a test needs)."""
    info: dict[str, Any] = field(default_factory=dict)
    """What ``docker info`` would say (``Runtimes``, ``DiscoveredDevices``): the GPU check at start-up reads it."""
    requests: list[SpawnRequest] = field(default_factory=list)
    """Every start's request, in order (its limits and GPUs)."""
    images: ImageProvider | None = None
    """When set (a FakeImageProvider), starts make sure of their image through it first, as Docker's does."""

    async def start(
        self, request: SpawnRequest, report: Report, address_known: AddressKnown | None = None
    ) -> ServerHandle:
        if self.images is not None:
            await self.images.ensure(request.image, report)
        report(30, "Creating your container")
        self.started.append(server_label(request.username, request.server_name))
        self.requests.append(request)
        number = next(_ids)
        handle = ServerHandle(
            f"fake{number:060d}", f"fake-{request.slug}", request.volume_name, f"http://fake-{number}:8888"
        )
        if self.gate is not None:
            await self.gate.wait()
        if address_known is not None and not self.fail_with:
            address_known(handle)  # as Docker's spawner: the address is known before the server answers
        await asyncio.sleep(self.start_delay)
        if self.fail_with:
            raise SpawnError(self.fail_with, f"fake failure for {request.username}", log_tail="it broke\n")
        self.servers[server_label(request.username, request.server_name)] = FakeServer(request, handle)
        return handle

    def crash(self, name: str, exit_code: int = 1, oom: bool = False) -> None:
        server = self.servers[name]
        server.running, server.exit_code, server.oom_killed = False, exit_code, oom

    def running(self) -> set[str]:
        return {name for name, server in self.servers.items() if server.running}

    async def stop(self, handle: ServerHandle) -> None:
        for name, server in list(self.servers.items()):
            if (
                server.handle.container_id == handle.container_id
                or server.handle.container_name == handle.container_name
            ):
                del self.servers[name]

    async def logs(self, handle: ServerHandle, lines: int = 50) -> str:
        for server in self.servers.values():
            if handle.container_id in (server.handle.container_id, "") and handle.container_name in (
                server.handle.container_name,
                "",
            ):
                return server.log
        return ""

    async def list_servers(self) -> list[ServerInfo]:
        return [
            ServerInfo(
                server.request.username,
                server.handle.container_id,
                server.handle.container_name,
                server.running,
                server.exit_code,
                server.oom_killed,
                gpu_ids=server.request.gpu_ids,
                server_name=server.request.server_name,
            )
            for server in self.servers.values()
        ]

    async def remove_data(self, volume_name: str) -> None:
        self.removed_volumes.append(volume_name)

    async def ping(self) -> bool:
        return self.reachable

    async def daemon_info(self) -> dict[str, Any]:
        return self.info


@dataclass
class FakeProxy(Proxy):
    routes: dict[str, Route] = field(default_factory=dict)
    """Live routes by slug."""
    add_delay: float = 0.0
    reachable: bool = True

    async def add_route(self, route: Route) -> None:
        await asyncio.sleep(self.add_delay)
        self.routes[route.slug] = route

    async def delete_route(self, slug: str) -> None:
        self.routes.pop(slug, None)

    async def list_routes(self) -> set[str]:
        return set(self.routes)

    async def ping(self) -> bool:
        return self.reachable


def _no_docker() -> Any:
    raise AssertionError("the fake image provider never talks to Docker")


async def _no_call(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the fake image provider never talks to Docker")


class FakeImageProvider(ImageProvider):
    """The real sharing of image work (hub/images.py) over a fake Docker: a missing image is built (with
    ``build:``) or pulled in ``steps`` steps, each of which waits for ``step_gate`` when it is set."""

    def __init__(
        self,
        settings: SpawnerSection | None = None,
        *,
        here: set[str] | None = None,
        failing: dict[str, str] | None = None,
        steps: int = 3,
    ) -> None:
        super().__init__(settings or SpawnerSection(), _no_docker, _no_call)
        self.here = set(here or ())
        """Image references Docker has."""
        self.failing = dict(failing or {})
        """Image references whose build or pull fails, with the reason."""
        self.steps = steps
        self.step_gate: asyncio.Semaphore | None = None
        self.works: list[str] = []
        """References built or pulled, in order."""
        self.running = 0
        self.most_running = 0

    def hold(self) -> None:
        """From now on each build or pull step waits until ``allow`` lets it go."""
        self.step_gate = asyncio.Semaphore(0)

    def allow(self, steps: int) -> None:
        assert self.step_gate is not None
        for _ in range(steps):
            self.step_gate.release()

    async def present(self, image: ImageSpec) -> bool:
        return image.image in self.here

    async def _ensure(self, image: ImageSpec, work: ImageWork) -> None:
        work.report(f"Checking the image {image.image}")
        await asyncio.sleep(0)
        if self.settings.pull_policy != "always" and image.image in self.here:
            return
        if self.settings.pull_policy == "never" and not image.build:
            raise SpawnError(f"The image {image.image} is not on this host, and this hub does not pull images.")
        self.works.append(image.image)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            verb = "Building" if image.build else "Pulling"
            work.begin("building" if image.build else "pulling", f"{verb} the image {image.image}")
            for step in range(1, self.steps + 1):
                if self.step_gate is not None:
                    await self.step_gate.acquire()
                await asyncio.sleep(0)
                line = f"Step {step}/{self.steps} : RUN make part {step}"
                work.report(f"{verb} {image.image}: {line}", build_percent(line))
            if image.image in self.failing:
                raise SpawnError(
                    f"The image {image.image} could not be built: {self.failing[image.image]}", "fake failure"
                )
            self.here.add(image.image)
        finally:
            self.running -= 1
