"""What the hub needs from whatever starts users' servers.

An implementation must provide ``start``, ``stop``, ``logs``, ``list_servers`` and ``remove_data``, be idempotent
(stopping a server that is gone is not an error) and keep no per-user state of its own:
everything needed later is in the returned ``ServerHandle``, which the hub stores.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.config import ImageSpec
from hub.resources import Limits


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    username: str
    slug: str
    image: ImageSpec
    base_url: str
    """/user/<name>/ or /user/<name>/<server>/"""
    token: str
    """The route secret the server must require on every request."""
    volume_name: str = ""
    """The account's volume for the user's files (named with the account's id)."""
    login_environment: dict[str, str] = field(default_factory=dict)
    """Variables the user's login method hands to the server (auth_state_env); secret: never log them."""
    limits: Limits | None = None
    """Memory, CPUs and GPUs chosen for this start (hub/resources.py); None: the image's own mem_limit, cpu_limit."""
    gpu_ids: tuple[str, ...] = ()
    """The host GPUs the hub assigned to this server (hub/gpus.py); the spawner passes exactly these."""
    server_name: str = ""
    """"" for the user's default server, else the named server's name; ``slug`` is that server's slug."""
    volume_server: str = ""
    """The server the volume belongs to: "" when it is the account's (shared by the user's servers)."""


@dataclass(frozen=True, slots=True)
class ServerHandle:
    container_id: str
    container_name: str
    volume_name: str
    url: str
    """Where the proxy sends traffic, e.g. http://172.19.0.2:8888."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the spawner can tell about one server it made, found by its labels."""

    username: str
    container_id: str
    container_name: str
    running: bool
    exit_code: int | None = None
    oom_killed: bool = False
    gpu_ids: tuple[str, ...] = ()
    """The GPUs the server was given (its hub.gpus label), so the hub knows them again after a restart."""
    server_name: str = ""
    """"" for a user's default server (and containers from before named servers)."""
    lost: str = ""
    """Why the backend lost a server that did not exit (a Swarm node that went away), in the user's words; the hub
    shows it instead of an exit code."""


class Report(Protocol):
    """Called with (percent done, what is happening) as a start proceeds; while an image is built, ``output``
    holds the last lines the build printed (a long ``pip install`` shows its own progress)."""

    def __call__(self, progress: int, message: str, output: tuple[str, ...] = ()) -> None: ...


AddressKnown = Callable[["ServerHandle"], None]
"""Called once during a start, as soon as the server's address is known (before it answers), so the hub can
write its route while the server boots."""


class Spawner(abc.ABC):
    """Starts and stops users' servers (one container each)."""

    @abc.abstractmethod
    async def start(
        self, request: SpawnRequest, report: Report, address_known: AddressKnown | None = None
    ) -> ServerHandle:
        """Return once the server answers HTTP; raise SpawnError with a reason a user understands.

        ``address_known`` (when given) is called with the handle as soon as the container has its address."""

    @abc.abstractmethod
    async def stop(self, handle: ServerHandle) -> None:
        """Stop and remove the server and keep its data. A server already gone is not an error."""

    @abc.abstractmethod
    async def logs(self, handle: ServerHandle, lines: int = 50) -> str: ...

    @abc.abstractmethod
    async def list_servers(self) -> list[ServerInfo]:
        """Every server this hub's spawner made that still exists, running or not."""

    @abc.abstractmethod
    async def remove_data(self, volume_name: str) -> None:
        """Delete a user's stored files (their volume). Files already gone are not an error."""

    async def ping(self) -> bool:
        """Whether the backend answers right now."""
        return True

    async def daemon_info(self) -> dict[str, Any]:
        """What the backend tells about itself (``docker info``: runtimes, devices), for the GPU check at start-up."""
        return {}

    async def close(self) -> None:
        """Release connections."""
