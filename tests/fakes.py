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

from hub.errors import SpawnError
from hub.names import server_label
from hub.proxy import Proxy, Route
from hub.spawner import Report, ServerHandle, ServerInfo, Spawner, SpawnRequest

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

    async def start(self, request: SpawnRequest, report: Report) -> ServerHandle:
        report(30, "Creating your container")
        self.started.append(server_label(request.username, request.server_name))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.start_delay)
        if self.fail_with:
            raise SpawnError(self.fail_with, f"fake failure for {request.username}", log_tail="it broke\n")
        number = next(_ids)
        handle = ServerHandle(
            f"fake{number:060d}", f"fake-{request.slug}", request.volume_name, f"http://fake-{number}:8888"
        )
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
                server_name=server.request.server_name,
            )
            for server in self.servers.values()
        ]

    async def remove_data(self, volume_name: str) -> None:
        self.removed_volumes.append(volume_name)

    async def ping(self) -> bool:
        return self.reachable


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
