"""What the socket proxy lets through of a Swarm service the hub creates (``spawner.backend: swarm``).

A service runs a container on some node, so its specification can reach a host like a container's can: a bind
mount, an added capability, the host's network, a published port. :func:`service_create` allows exactly the
specification hub/swarm_spawner.py sends and refuses every other field that is set. Keys are folded as Docker's
Go decoder folds them (hub/docker_policy.py reads the body).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from hub.docker_policy import VOLUME_NAME, Decision, Folded, Refused, check_query, empty, folded_json, labelled

SERVICE_FIELDS = frozenset({"name", "labels", "tasktemplate", "mode", "endpointspec"})
TASK_FIELDS = frozenset({"containerspec", "resources", "restartpolicy", "logdriver", "networks"})
CONTAINER_FIELDS = frozenset(
    {"image", "args", "env", "user", "labels", "mounts", "stopgraceperiod", "init", "capabilitydrop"}
)
LIMIT_FIELDS = frozenset({"memorybytes", "nanocpus", "pids"})
RESERVATION_FIELDS = frozenset({"memorybytes", "nanocpus"})
LOG_DRIVERS = frozenset({"json-file", "local"})
HOST_NETWORKS = frozenset({"host", "bridge", "none", "ingress", "docker_gwbridge"})
NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NETWORK_ID = re.compile(r"^[0-9a-fA-F]+$")
"""A target of hex digits only could be a network's ID or the start of one, which Docker resolves to any local
network, the host's included; the hub names its networks with words, so such targets are refused."""


def fields(value: Any, allowed: frozenset[str], where: str) -> Folded:
    """An object whose set fields are all in ``allowed`` (unset ones: null, false, 0, "", [] or {})."""
    if not isinstance(value, Folded):
        raise Refused(f"{where} must be an object")
    for key, item in value.items():
        if key not in allowed and not empty(item):
            raise Refused(f"{where}.{value.name(key)} is not a setting the hub uses for a service")
    return value


def check_mounts(mounts: Any) -> tuple[str, ...]:
    """Named volumes only, made by the local driver without options (no host folder)."""
    if mounts is None:
        return ()
    if not isinstance(mounts, list):
        raise Refused("ContainerSpec.Mounts must be a list")
    volumes = []
    for mount in mounts:
        mount = fields(mount, frozenset({"type", "source", "target", "readonly", "volumeoptions"}), "a mount")
        source = mount.get("source")
        if mount.get("type") != "volume" or not isinstance(source, str) or not VOLUME_NAME.match(source):
            raise Refused("a service may mount only named volumes (not a host folder, tmpfs or pipe)")
        options = mount.get("volumeoptions") or Folded()
        if isinstance(options, Folded) and not empty(options.get("driverconfig")):
            raise Refused("a mount that makes its volume with a driver configuration is not allowed")
        fields(options, frozenset({"nocopy", "labels"}), "VolumeOptions")
        volumes.append(source)
    return tuple(volumes)


def check_networks(networks: Any) -> None:
    if networks is None:
        return
    if not isinstance(networks, list):
        raise Refused("TaskTemplate.Networks must be a list")
    for network in networks:
        network = fields(network, frozenset({"target", "aliases"}), "a network attachment")
        target = network.get("target")
        if (
            not isinstance(target, str)
            or not NETWORK.match(target)
            or NETWORK_ID.match(target)
            or target.lower() in HOST_NETWORKS
        ):
            raise Refused(f"attaching a service to the network {target!r} is not allowed")


def check_resources(resources: Any) -> None:
    if resources is None:
        return
    resources = fields(resources, frozenset({"limits", "reservations"}), "Resources")
    if resources.get("limits") is not None:
        fields(resources["limits"], LIMIT_FIELDS, "Resources.Limits")
    if resources.get("reservations") is not None:
        fields(resources["reservations"], RESERVATION_FIELDS, "Resources.Reservations")


def service_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``POST /services/create``: a one-replica service with the hub's label, as hub/swarm_spawner.py makes it."""
    check_query(query, frozenset(), "creating a service")
    spec = fields(folded_json(body), SERVICE_FIELDS, "the service")
    if not labelled(spec):
        raise Refused("a service without the label hub.managed=true is not one the hub makes")
    mode = spec.get("mode")  # absent: Docker's default, one replica
    if mode is not None and (not isinstance(mode, Folded) or set(mode) != {"replicated"}):  # Global: {}: every node
        raise Refused("a service of the hub runs one replica (Mode: Replicated)")
    replicated = fields((mode or Folded()).get("replicated") or Folded(), frozenset({"replicas"}), "Mode.Replicated")
    if replicated.get("replicas") not in (None, 1):
        raise Refused("a service of the hub runs one replica")
    endpoint = fields(spec.get("endpointspec") or Folded(), frozenset({"mode"}), "EndpointSpec")
    if endpoint.get("mode") not in (None, "dnsrr", "vip"):
        raise Refused("that endpoint mode is not one the hub uses")
    task = fields(spec.get("tasktemplate"), TASK_FIELDS, "TaskTemplate")
    container = fields(task.get("containerspec"), CONTAINER_FIELDS, "ContainerSpec")
    drop = container.get("capabilitydrop") or []
    if not isinstance(drop, list) or not all(isinstance(item, str) for item in drop):
        raise Refused("ContainerSpec.CapabilityDrop must be a list of names")
    volumes = check_mounts(container.get("mounts"))
    check_networks(task.get("networks"))
    check_resources(task.get("resources"))
    log_driver = task.get("logdriver")
    if log_driver is not None:
        log_driver = fields(log_driver, frozenset({"name", "options"}), "LogDriver")
        if log_driver.get("name") not in LOG_DRIVERS:
            raise Refused(f"the log driver {log_driver.get('name')!r} is not allowed")
    return Decision("create a service", plain_volumes=volumes)
