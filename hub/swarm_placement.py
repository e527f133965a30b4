"""Where a user's volume lives in a Swarm, so their server starts again next to their files.

A volume of the ``local`` driver is a folder on one node. Without ``spawner.volume_driver`` (a driver such as NFS
whose volumes any node can mount), the node where a volume's server first ran is recorded and each later start
is pinned there with the placement constraint ``node.id==<id>``.

The record is a small Swarm config object per volume (``<prefix>-pin-<digest>``, labelled with the volume and
the user), kept by the managers with the rest of the cluster's state: it needs no database column, and the
hub reads it back through the manager it talks to. A volume that already exists on the manager's own node (a
hub moved over from one host with ``hub restore --volumes``) is pinned to that node on its first start.

``hub swarm-unpin USER`` removes a user's records: their next start may go to any node, with a new volume
there (the files stay on the old node until it comes back).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types

from hub.config import SpawnerSection
from hub.errors import SpawnError
from hub.i18n import L_

log = logging.getLogger(__name__)

PIN_VOLUME_LABEL = "hub.pin-volume"
PIN_NODE_LABEL = "hub.pin-node"
NODE_ID = re.compile(r"^[a-z0-9]{25}\Z")
"""A Swarm node's ID: 25 lower-case letters and digits."""


def pin_name(prefix: str, volume: str) -> str:
    """The config's name: one per volume (a digest: volume names may be longer than Swarm's 64 characters)."""
    return f"{prefix}-pin-{hashlib.sha256(volume.encode('utf-8')).hexdigest()[:24]}"


def constraint(node_id: str) -> str:
    return f"node.id=={node_id}"


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as the manager sees it: whether new tasks can go there, and its name for people."""

    node_id: str
    hostname: str
    available: bool
    why: str


class VolumePins:
    """Reads, records and removes the node of each volume (blocking calls: run them in the spawner's threads)."""

    def __init__(self, client: Callable[[], docker.DockerClient], prefix: str, extra_labels: dict[str, str]) -> None:
        self.client = client
        self.prefix = prefix
        self.extra_labels = extra_labels

    def _found(self, labels: list[str]) -> list[Any]:
        filters = {"label": ["hub.managed=true", f"hub.prefix={self.prefix}", *labels]}
        return list(self.client().configs.list(filters=filters))

    def node_of(self, volume: str) -> str | None:
        """The node the volume is pinned to, or None."""
        for config in self._found([f"{PIN_VOLUME_LABEL}={volume}"]):
            node = ((config.attrs.get("Spec") or {}).get("Labels") or {}).get(PIN_NODE_LABEL, "")
            if NODE_ID.fullmatch(node):
                return str(node)
        return None

    def pin(self, volume: str, node_id: str, username: str) -> None:
        """Record the volume's node (a record made meanwhile by another start stays)."""
        if not NODE_ID.fullmatch(node_id):
            raise ValueError(f"{node_id!r} is not a Swarm node ID")
        labels = {
            "hub.managed": "true",
            "hub.prefix": self.prefix,
            "hub.username": username,
            PIN_VOLUME_LABEL: volume,
            PIN_NODE_LABEL: node_id,
            **self.extra_labels,
        }
        try:
            self.client().configs.create(name=pin_name(self.prefix, volume), data=node_id.encode(), labels=labels)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise

    def record(self, volume: str, node_id: str, username: str) -> None:
        """:meth:`pin`, where a failure only loses the record (the next start then goes to any node)."""
        try:
            self.pin(volume, node_id, username)
        except (docker.errors.APIError, ValueError) as exc:
            log.warning("could not record that %s is on node %s: %s", volume, node_id, exc)

    def unpin_volume(self, volume: str) -> int:
        return self._remove(self._found([f"{PIN_VOLUME_LABEL}={volume}"]))

    def unpin_user(self, username: str) -> int:
        """Remove every record of the user's volumes; returns how many there were."""
        return self._remove(self._found([f"hub.username={username}"]))

    def _remove(self, configs: list[Any]) -> int:
        removed = 0
        for config in configs:
            try:
                config.remove()
                removed += 1
            except docker.errors.NotFound:
                pass
        return removed

    def local_node(self) -> str:
        """The ID of the node the hub talks to (a manager)."""
        return str((self.client().info().get("Swarm") or {}).get("NodeID") or "")

    def node_state(self, node_id: str) -> NodeState:
        try:
            node = self.client().api.inspect_node(node_id)
        except docker.errors.NotFound:
            return NodeState(node_id, node_id[:12], False, "it is no longer part of the Swarm")
        hostname = str((node.get("Description") or {}).get("Hostname") or node_id[:12])
        state = str((node.get("Status") or {}).get("State") or "unknown")
        availability = str((node.get("Spec") or {}).get("Availability") or "active")
        if state != "ready":
            return NodeState(node_id, hostname, False, f"its state is {state}")
        if availability != "active":
            return NodeState(node_id, hostname, False, f"its availability is {availability}")
        return NodeState(node_id, hostname, True, "")


def start_node(
    pins: VolumePins, username: str, volume: str, volume_here: Callable[[], bool]
) -> tuple[str | None, bool]:
    """The node a start must go to: where the user's volume is recorded, or None (a new volume: any node); and
    whether the volume must first be made on the hub's own node (recorded there). A volume already on the hub's
    own node (restored from a single-host hub) is recorded there first. A recorded node that is not available
    fails the start in plain words."""
    node = pins.node_of(volume)
    here = pins.local_node()
    if node is None and here and volume_here():
        pins.pin(volume, here, username)
        node = here
    if node is None:
        return None, False
    state = pins.node_state(node)
    if not state.available:
        raise SpawnError(
            L_(
                "Your files are on the machine %(node)s of the cluster, and that machine is not available "
                "right now, so your server cannot start. Please try again later, or ask an admin.",
                node=state.hostname,
            ),
            f"{volume} is on node {state.hostname} ({node}), which is not available: {state.why}. When it "
            f"will not come back, `hub swarm-unpin {username}` lets the next start go to any node, with an "
            "empty volume there",
        )
    return node, node == here


def volume_mount(
    settings: SpawnerSection, target: str, volume: str, volume_labels: dict[str, str] | None
) -> docker.types.Mount:
    """The user's volume; a node that does not have it yet makes it with these labels and driver options
    (``{volume}`` in the operator's driver options becomes the volume's name)."""
    driver = None
    if settings.volume_driver:
        options = {key: value.replace("{volume}", volume) for key, value in settings.volume_driver_options.items()}
        driver = docker.types.DriverConfig(settings.volume_driver, options or None)
    elif settings.volume_size:
        driver = docker.types.DriverConfig("local", {"size": settings.volume_size})
    return docker.types.Mount(target, volume, type="volume", labels=volume_labels or None, driver_config=driver)


def unpin_user(settings: SpawnerSection, username: str) -> int:
    """``hub swarm-unpin USER``: remove the records of the user's volumes' nodes; prints what it did."""
    client = docker.DockerClient(base_url=settings.docker_url) if settings.docker_url else docker.from_env()
    try:
        removed = VolumePins(lambda: client, settings.prefix, {}).unpin_user(username)
    finally:
        client.close()
    if removed:
        print(
            f"{username}: {removed} volume(s) no longer tied to a node; the next start goes to any node and makes a "
            "new, empty volume there if that node has none (the old files stay on the old node)"
        )
    else:
        print(f"{username}: no volume of this user is tied to a node")
    return 0


__all__ = ["NODE_ID", "NodeState", "start_node", "volume_mount", "VolumePins", "constraint", "pin_name", "unpin_user"]
