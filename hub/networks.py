"""Per-user Docker networks (``spawner.isolation: per_user``): user containers that cannot reach each other.

Each user's container gets a bridge network of its own, named from the user's slug
(``names.user_network_name``). Docker keeps bridge networks apart, so one user's container cannot
open a connection to another's. Traefik and the hub reach the containers: on the host through the
host's route to every bridge, under compose by joining each network (``spawner.connect_containers``).

Why the hub picks the subnets itself: the daemon hands a new network a subnet from its
``default-address-pools``, by default 172.17.0.0/16 to 172.31.0.0/16 as /16s and 192.168.0.0/16 as
/20s, about 31 networks, so the 32nd user could not start. Changing those pools takes an edit of
``daemon.json`` and a daemon restart on every Docker host, and it changes the subnets of every
network later made on that host. Instead, the hub cuts /28 networks (14 addresses: the gateway, the
user's container, Traefik, the hub) out of its own ``spawner.isolated_subnet_pool`` (default
10.213.0.0/16: 4096 networks), skips subnets that any network on the daemon already uses, and
needs nothing from the daemon's configuration.

Networks carry the hub's labels plus ``hub.network=per-user`` and ``hub.container=<its container>``,
so a network whose container is gone (a crash, a hub killed mid-start) is found and removed
(``UserNetworks.sweep``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from typing import Any

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from hub import names
from hub.config import SpawnerSection
from hub.errors import SpawnError
from hub.i18n import N_

log = logging.getLogger(__name__)

KIND_LABEL = "hub.network"
KIND = "per-user"
CONTAINER_LABEL = "hub.container"
CREATE_ATTEMPTS = 5
"""Tries when another program took the chosen subnet between our look and our create."""

Call = Callable[..., Awaitable[Any]]


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def pick_subnet(pool: IPv4Network, prefixlen: int, used: Iterable[Any]) -> IPv4Network | None:
    """The first ``/prefixlen`` block of ``pool`` that overlaps none of the ``used`` networks, or None."""
    step = 2 ** (32 - prefixlen)
    taken = _merged(
        (int(net.network_address), int(net.broadcast_address))
        for net in used
        if net.version == 4 and net.overlaps(pool)
    )
    address, last = int(pool.network_address), int(pool.broadcast_address)
    index = 0
    while address + step - 1 <= last:
        while index < len(taken) and taken[index][1] < address:
            index += 1
        if index < len(taken) and taken[index][0] <= address + step - 1:
            address = (taken[index][1] // step + 1) * step  # the next block after this taken range
            continue
        return IPv4Network((address, prefixlen))
    return None


def used_subnets(client: docker.DockerClient) -> list[Any]:
    """Every subnet of every network the daemon has (ours, other programs', the default bridge)."""
    found = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet")
            if subnet:
                try:
                    found.append(ip_network(subnet, strict=False))
                except ValueError:
                    continue
    return found


@dataclass
class _KeyedLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class UserNetworks:
    """Makes, joins and removes the per-user networks. Docker calls go through ``call`` (off the event loop)."""

    def __init__(self, settings: SpawnerSection, client: Callable[[], docker.DockerClient], call: Call) -> None:
        self.settings = settings
        self.client = client
        self.call = call
        self._locks: dict[str, _KeyedLock] = {}
        self._subnets = asyncio.Lock()  # one choice of subnet at a time: two starts never pick the same one

    @property
    def selector(self) -> list[str]:
        return ["hub.managed=true", f"hub.prefix={self.settings.prefix}", f"{KIND_LABEL}={KIND}"]

    @asynccontextmanager
    async def holding(self, network: str) -> AsyncIterator[None]:
        """Hold one network's lock: its creation and its container's creation are one step for the sweep."""
        entry = self._locks.setdefault(network, _KeyedLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._locks.pop(network, None)

    # -- create ------------------------------------------------------------------------------
    async def ensure(self, slug: str, container_name: str, labels: dict[str, str]) -> str:
        """The user's network, made if missing, with the helpers joined. Call it holding ``holding(name)``."""
        name = names.user_network_name(self.settings.prefix, slug)
        network = await self.call(self._find, name)
        if network is not None and (network.attrs.get("Labels") or {}).get(CONTAINER_LABEL) != container_name:
            raise SpawnError(
                N_(
                    "Your server cannot start: a Docker network that the hub did not make is in its way. "
                    "Please tell an admin."
                ),
                f"network {name} exists without the label {CONTAINER_LABEL}={container_name}: remove or rename it",
            )
        if network is None:
            async with self._subnets:
                network = await self._create(name, container_name, labels)
        await self.call(self._join_helpers, network)
        return name

    def _find(self, name: str) -> Any:
        try:
            network = self.client().networks.get(name)
        except docker.errors.NotFound:
            return None
        return network if network.name == name else None

    async def _create(self, name: str, container_name: str, labels: dict[str, str]) -> Any:
        pool, size = self.settings.isolated_subnet_pool, self.settings.isolated_subnet_size
        net_labels = {**labels, KIND_LABEL: KIND, CONTAINER_LABEL: container_name}
        for attempt in range(CREATE_ATTEMPTS):
            subnet = pick_subnet(pool, size, await self.call(lambda: used_subnets(self.client())))
            if subnet is None:
                raise SpawnError(
                    N_(
                        "Your server cannot start: the hub has no network addresses left for another server. "
                        "Please tell an admin."
                    ),
                    f"no free /{size} subnet left in spawner.isolated_subnet_pool {pool}: make the pool larger "
                    "or spawner.isolated_subnet_size longer",
                )
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))])
            try:
                network = await self.call(
                    lambda ipam=ipam: self.client().networks.create(  # bound now, not later
                        name, driver="bridge", ipam=ipam, labels=net_labels, check_duplicate=True
                    )
                )
            except docker.errors.APIError as exc:
                text = str(exc.explanation or exc)
                if "overlap" in text and attempt + 1 < CREATE_ATTEMPTS:
                    log.info("subnet %s was taken meanwhile; choosing another", subnet)
                    continue
                if exc.status_code == 409 or "already exists" in text:  # made meanwhile by another process
                    found = await self.call(self._find, name)
                    if found is not None:
                        return found
                raise SpawnError(
                    N_("Your server cannot start: Docker refused to make its network."),
                    f"create network {name} ({subnet}): {text}",
                ) from exc
            log.info("created network %s (%s)", name, subnet)
            return network
        raise AssertionError("unreachable")

    def _join_helpers(self, network: Any) -> None:
        for helper in self.settings.connect_containers:
            try:
                network.connect(helper)
            except docker.errors.NotFound as exc:
                raise SpawnError(
                    N_(
                        "Your server cannot start: the hub is set up to connect a container that does not exist. "
                        "Please tell an admin."
                    ),
                    f"spawner.connect_containers: Docker has no container {helper!r} to join to {network.name}",
                ) from exc
            except docker.errors.APIError as exc:
                if "already exists" not in str(exc.explanation or exc):  # joined before: nothing to do
                    raise

    # -- remove ------------------------------------------------------------------------------
    async def remove_for(self, container_name: str) -> None:
        """Remove the per-user networks of a container that was removed (none: nothing to do)."""
        selector = [*self.selector, f"{CONTAINER_LABEL}={container_name}"]
        found = await self.call(lambda: self.client().networks.list(filters={"label": selector}))
        for network in found:
            async with self.holding(network.name):
                await self.call(self._remove, network)

    def _remove(self, network: Any) -> None:
        """Helpers leave first (a network with endpoints cannot go); one still in use stays for the next sweep."""
        for helper in self.settings.connect_containers:
            try:
                network.disconnect(helper, force=True)
            except docker.errors.APIError:
                pass  # not joined, or gone
        try:
            network.remove()
            log.info("removed network %s", network.name)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("network %s was not removed: %s", network.name, exc.explanation or exc)

    async def sweep(self, containers: set[str]) -> list[str]:
        """Remove per-user networks whose container is not among ``containers`` (and is not being made now);
        join the helpers to the others (a recreated Traefik container has lost them). Return what was removed."""
        networks = await self.call(lambda: self.client().networks.list(filters={"label": self.selector}))
        removed = []
        live = []
        for network in networks:
            owner = (network.attrs.get("Labels") or {}).get(CONTAINER_LABEL, "")
            if owner in containers:
                live.append(network)
                continue
            async with self.holding(network.name):  # waits for a start that is making this network right now
                if await self.call(self._container_exists, owner):
                    live.append(network)
                    continue
                log.warning("removing network %s: its container %s is gone", network.name, owner)
                await self.call(self._remove, network)
                removed.append(network.name)
        if self.settings.connect_containers and live:
            await self.call(self._rejoin, live)
        return removed

    def _container_exists(self, name: str) -> bool:
        if not name:
            return False
        try:
            self.client().containers.get(name)
        except docker.errors.NotFound:
            return False
        return True

    def _rejoin(self, networks: list[Any]) -> None:
        client = self.client()
        for helper in self.settings.connect_containers:
            try:
                joined = set(client.containers.get(helper).attrs["NetworkSettings"]["Networks"])
            except docker.errors.NotFound:
                log.warning("spawner.connect_containers: Docker has no container %r", helper)
                continue
            for network in networks:
                if network.name not in joined:
                    log.info("joining %s to network %s again", helper, network.name)
                    try:
                        network.connect(helper)
                    except docker.errors.APIError as exc:
                        log.warning("could not join %s to %s: %s", helper, network.name, exc.explanation or exc)
