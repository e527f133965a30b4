"""What the socket proxy lets through of a Swarm service the hub creates (``spawner.backend: swarm``).

A service runs a container on some node, so its specification can reach a host like a container's can: a bind
mount, an added capability, the host's network, a published port. :func:`service_create` allows exactly the
specification hub/swarm_spawner.py sends and refuses every other field that is set. Keys are folded as Docker's
Go decoder folds them (hub/docker_policy.py reads the body).

Besides the users' servers: the one placement the hub sets (``node.id==<id>``: a server goes to its volume's
node, hub/swarm_placement.py), the record of that node (a Swarm config, :func:`config_create`), and the job that
fetches an image onto every node (hub/swarm_prepull.py, :func:`check_prepull`). A user volume's mount may carry
driver options only when they are the ``local`` driver's ``size`` or exactly the volume driver the operator gave
the proxy in its own environment (``HUB_SPAWNER__VOLUME_DRIVER`` and ``HUB_SPAWNER__VOLUME_DRIVER_OPTIONS``, the
variables that set the hub's ``spawner.volume_driver``): the hub alone cannot choose driver options, which can
make a volume out of any folder of the host.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hub.docker_policy import VOLUME_NAME, Decision, Folded, Refused, check_query, empty, folded_json, labelled

SERVICE_FIELDS = frozenset({"name", "labels", "tasktemplate", "mode", "endpointspec"})
TASK_FIELDS = frozenset({"containerspec", "resources", "restartpolicy", "logdriver", "networks", "placement"})
CONTAINER_FIELDS = frozenset(
    {"image", "args", "env", "user", "labels", "mounts", "stopgraceperiod", "init", "capabilitydrop"}
)
LIMIT_FIELDS = frozenset({"memorybytes", "nanocpus", "pids"})
RESERVATION_FIELDS = frozenset({"memorybytes", "nanocpus"})
LOG_DRIVERS = frozenset({"json-file", "local"})
HOST_NETWORKS = frozenset({"host", "bridge", "none", "ingress", "docker_gwbridge"})
NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
NETWORK_ID = re.compile(r"^[0-9A-Za-z]+\Z")
"""A target of letters and digits only could be a network's ID or the start of one: a manager looks a name it
does not know up as an ID prefix (hex for a node's own networks; letters and digits for the Swarm's, among them
its own ``host`` and ``bridge`` networks, whose IDs are not listed but can be guessed a letter at a time). The
hub's networks have a "-", "_" or "." in their names (hub-users), so such targets are refused."""
NODE_CONSTRAINT = re.compile(r"^node\.id==[a-z0-9]{25}\Z")
"""The only placement the hub sets: one node by its ID (hub/swarm_placement.py)."""
NODE_ID = re.compile(r"^[a-z0-9]{25}\Z")
PIN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}-pin-[0-9a-f]{24}\Z")
PREPULL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}-prepull-[0-9a-f]{12}\Z")
PREPULL_COMMAND = ["true"]
PREPULL_USER = "65534:65534"
DRIVER_ENV = "HUB_SPAWNER__VOLUME_DRIVER"
DRIVER_OPTIONS_ENV = "HUB_SPAWNER__VOLUME_DRIVER_OPTIONS"


def fields(value: Any, allowed: frozenset[str], where: str) -> Folded:
    """An object whose set fields are all in ``allowed`` (unset ones: null, false, 0, "", [] or {})."""
    if not isinstance(value, Folded):
        raise Refused(f"{where} must be an object")
    for key, item in value.items():
        if key not in allowed and not empty(item):
            raise Refused(f"{where}.{value.name(key)} is not a setting the hub uses for a service")
    return value


def operator_volume_driver(environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]] | None:
    """The volume driver and options the operator gave the proxy (its own environment), or None."""
    env = os.environ if environ is None else environ
    name = env.get(DRIVER_ENV, "")
    if not name:
        return None
    try:
        options = json.loads(env.get(DRIVER_OPTIONS_ENV) or "{}")
    except ValueError:
        options = None
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise Refused(f"{DRIVER_OPTIONS_ENV} in the proxy's environment is not a JSON object of strings")
    return name, options


def driver_config_kind(config: Any, volume: str) -> str:
    """``plain``: none, or the local driver with only a size (an ordinary volume); ``operator``: exactly the
    operator's volume driver, with ``{volume}`` in its options replaced by this volume's name; anything else is
    refused."""
    if empty(config):
        return "plain"
    config = fields(config, frozenset({"name", "options"}), "DriverConfig")
    name, options = config.get("name") or "", config.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(value, str) for value in options.values()):
        raise Refused("DriverConfig.Options must be an object of strings")
    if name in ("", "local") and set(options) <= {"size"}:
        return "plain"
    allowed = operator_volume_driver()
    if allowed is not None and name == allowed[0]:
        expected = {key: value.replace("{volume}", volume) for key, value in allowed[1].items()}
        if dict(options) == expected:
            return "operator"
    raise Refused("a mount that makes its volume with a driver configuration is not allowed")


def check_mounts(mounts: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Named volumes only, made by the local driver without options (no host folder) or by the operator's driver.
    Returns the volumes that must be plain local volumes if they exist, and those made with the operator's driver,
    which must be the hub's if they exist (Docker ignores a mount's driver options for a volume it already has)."""
    if mounts is None:
        return (), ()
    if not isinstance(mounts, list):
        raise Refused("ContainerSpec.Mounts must be a list")
    volumes, driven = [], []
    for mount in mounts:
        mount = fields(mount, frozenset({"type", "source", "target", "readonly", "volumeoptions"}), "a mount")
        source = mount.get("source")
        if mount.get("type") != "volume" or not isinstance(source, str) or not VOLUME_NAME.fullmatch(source):
            raise Refused("a service may mount only named volumes (not a host folder, tmpfs or pipe)")
        options = fields(
            mount.get("volumeoptions") or Folded(), frozenset({"nocopy", "labels", "driverconfig"}), "VolumeOptions"
        )
        if driver_config_kind(options.get("driverconfig"), source) == "plain":
            volumes.append(source)
        else:
            driven.append(source)
    return tuple(volumes), tuple(driven)


def check_placement(placement: Any) -> None:
    """Nothing, or exactly one ``node.id==<node ID>`` (no roles, labels, preferences or platforms)."""
    if empty(placement):
        return
    placement = fields(placement, frozenset({"constraints"}), "Placement")
    constraints = placement.get("constraints") or []
    if (
        not isinstance(constraints, list)
        or len(constraints) != 1
        or not isinstance(constraints[0], str)
        or not NODE_CONSTRAINT.fullmatch(constraints[0])
    ):
        raise Refused(
            "TaskTemplate.Placement may hold only one constraint, node.id==<node ID> (the node of a user's files)"
        )


def check_networks(networks: Any) -> tuple[str, ...]:
    """The networks a service joins, by name (the proxy checks they are the hub's); no aliases there."""
    if networks is None:
        return ()
    if not isinstance(networks, list):
        raise Refused("TaskTemplate.Networks must be a list")
    targets: list[str] = []
    for network in networks:
        network = fields(network, frozenset({"target", "aliases"}), "a network attachment")
        if not empty(network.get("aliases")):
            raise Refused("aliases on a network (names other programs' services may answer to) are not allowed")
        target = network.get("target")
        if (
            not isinstance(target, str)
            or not NETWORK.fullmatch(target)
            or NETWORK_ID.fullmatch(target)
            or target.lower() in HOST_NETWORKS
        ):
            raise Refused(
                f"attaching a service to the network {target!r} is not allowed (the hub's network needs a name "
                'with a "-", "_" or ".", such as hub-users: letters and digits alone can name a network by its ID)'
            )
        targets.append(target)
    return tuple(targets)


def check_resources(resources: Any) -> None:
    if resources is None:
        return
    resources = fields(resources, frozenset({"limits", "reservations"}), "Resources")
    if resources.get("limits") is not None:
        fields(resources["limits"], LIMIT_FIELDS, "Resources.Limits")
    if resources.get("reservations") is not None:
        fields(resources["reservations"], RESERVATION_FIELDS, "Resources.Reservations")


def service_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``POST /services/create``: a one-replica service with the hub's label, as hub/swarm_spawner.py makes it,
    or the pre-pull job of hub/swarm_prepull.py."""
    check_query(query, frozenset(), "creating a service")
    spec = fields(folded_json(body), SERVICE_FIELDS, "the service")
    if not labelled(spec):
        raise Refused("a service without the label hub.managed=true is not one the hub makes")
    mode = spec.get("mode")  # absent: Docker's default, one replica
    if isinstance(mode, Folded) and "globaljob" in mode:
        return check_prepull(spec)
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
    volumes, driven = check_mounts(container.get("mounts"))
    networks = check_networks(task.get("networks"))
    check_resources(task.get("resources"))
    check_placement(task.get("placement"))
    log_driver = task.get("logdriver")
    if log_driver is not None:
        log_driver = fields(log_driver, frozenset({"name", "options"}), "LogDriver")
        if log_driver.get("name") not in LOG_DRIVERS:
            raise Refused(f"the log driver {log_driver.get('name')!r} is not allowed")
    return Decision("create a service", plain_volumes=volumes, labelled_volumes=driven, networks=networks)


def check_prepull(spec: Folded) -> Decision:
    """The job that runs ``true`` from an image on every node (hub/swarm_prepull.py), and nothing more: no mounts,
    networks, ports, placement or capabilities, as the unprivileged user ``nobody``, restart policy ``none``."""
    name = spec.get("name")
    if not isinstance(name, str) or not PREPULL_NAME.fullmatch(name):
        raise Refused("a job of the hub is named <prefix>-prepull-<digest>")
    labels = spec.get("labels")
    if not isinstance(labels, Folded) or labels.get("hub.prepull") != "true":
        raise Refused("a job of the hub carries the label hub.prepull=true")
    if set(spec["mode"]) != {"globaljob"} or not empty(spec["mode"]["globaljob"]):
        raise Refused("the hub's job runs once on every node (Mode: GlobalJob, no settings)")
    if not empty(spec.get("endpointspec")):
        raise Refused("the hub's job has no endpoint")
    task = fields(spec.get("tasktemplate"), frozenset({"containerspec", "resources", "restartpolicy"}), "TaskTemplate")
    container = fields(
        task.get("containerspec"), frozenset({"image", "command", "user", "labels", "capabilitydrop"}), "ContainerSpec"
    )
    if not isinstance(container.get("image"), str) or not container["image"]:
        raise Refused("the hub's job names its image")
    if container.get("command") != PREPULL_COMMAND or container.get("user") != PREPULL_USER:
        raise Refused(f"the hub's job runs only {PREPULL_COMMAND} as {PREPULL_USER}")
    if container.get("capabilitydrop") != ["ALL"]:
        raise Refused("the hub's job drops every capability")
    check_resources(task.get("resources"))
    restart = fields(task.get("restartpolicy") or Folded(), frozenset({"condition"}), "RestartPolicy")
    if restart.get("condition") not in (None, "none"):
        raise Refused("the hub's job is not restarted")
    return Decision("fetch an image onto every node")


def config_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``POST /configs/create``: the record of the node a user's volume is on (hub/swarm_placement.py): a node's
    ID under the hub's label, no templating."""
    check_query(query, frozenset(), "creating a config")
    spec = fields(folded_json(body), frozenset({"name", "labels", "data"}), "the config")
    if not labelled(spec):
        raise Refused("a config without the label hub.managed=true is not one the hub makes")
    name = spec.get("name")
    if not isinstance(name, str) or not PIN_NAME.fullmatch(name):
        raise Refused("a config of the hub is named <prefix>-pin-<digest>")
    try:
        data = base64.b64decode(str(spec.get("data") or ""), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        data = ""
    if not NODE_ID.fullmatch(data):
        raise Refused("a config of the hub holds one node ID")
    return Decision("record the node of a volume")
