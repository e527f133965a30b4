"""What the socket proxy lets the hub read of Docker's answers: its own objects in full, others' barely.

Docker's records hold other programs' secrets: a container's or a service's environment (database passwords,
API keys), a task's copy of that environment, a volume's driver options (a CIFS password). The hub reads only
its own, so lists of containers, services, tasks and Swarm configs are cut down to the objects that carry
``hub.managed=true``.
Inspecting one container stays possible for every container (the hub looks up the containers it joins to
users' networks, such as Traefik's, by name), but a container that is not the hub's is answered with its name,
id, state, image and networks only (no environment, command, labels or mounts). A volume that is not the hub's
keeps its labels (a restore reads them to refuse to write into it) and loses its driver options and status.
The functions here are pure: the proxy (hub/socket_proxy.py) reads Docker's answer, calls :func:`narrow` and
sends what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.docker_policy import MANAGED_LABEL

SAFE_VOLUME_OPTIONS = frozenset({"size"})
NETWORK_FIELDS = (
    "NetworkID",
    "EndpointID",
    "Gateway",
    "IPAddress",
    "IPPrefixLen",
    "GlobalIPv6Address",
    "MacAddress",
    "Aliases",
    "DNSNames",
)


def _labelled(labels: Any) -> bool:
    return isinstance(labels, dict) and labels.get(MANAGED_LABEL) == "true"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _spec(record: Mapping[str, Any]) -> dict[str, Any]:
    return _object(record.get("Spec"))


def container_is_hubs(record: Mapping[str, Any]) -> bool:
    """A container's record (a list's summary has ``Labels``, an inspection ``Config.Labels``)."""
    config = record.get("Config")
    labels = config.get("Labels") if isinstance(config, dict) else record.get("Labels")
    return _labelled(labels)


def service_is_hubs(record: Mapping[str, Any]) -> bool:
    return _labelled(_spec(record).get("Labels"))


def config_is_hubs(record: Mapping[str, Any]) -> bool:
    """A Swarm config (its data may be another program's secret): the hub's carry its label in their spec."""
    return _labelled(_spec(record).get("Labels"))


def task_is_hubs(record: Mapping[str, Any]) -> bool:
    """A task carries its service's container specification, labels included (hub/swarm_spawner.py sets them)."""
    container = _spec(record).get("ContainerSpec")
    return isinstance(container, dict) and _labelled(container.get("Labels"))


def container_outline(record: Mapping[str, Any]) -> dict[str, Any]:
    """Another program's container as the hub may see it: name, id, state, image and the networks it is on."""
    state = _object(record.get("State"))
    config = _object(record.get("Config"))
    networks = _object(_object(record.get("NetworkSettings")).get("Networks"))
    return {
        "Id": record.get("Id"),
        "Name": record.get("Name"),
        "Created": record.get("Created"),
        "Image": record.get("Image"),  # the image's id (the SDK's Container.image reads it)
        "State": {key: state.get(key) for key in ("Status", "Running") if key in state},
        "Config": {key: config.get(key) for key in ("Image", "Tty") if key in config},  # the SDK reads Tty
        "NetworkSettings": {
            "Networks": {
                str(name): {key: entry.get(key) for key in NETWORK_FIELDS if key in entry}
                for name, entry in networks.items()
                if isinstance(entry, dict)
            }
        },
    }


def volume_outline(record: Mapping[str, Any]) -> dict[str, Any]:
    """A volume, with its driver options and status left out unless it is the hub's (only ``size`` stays)."""
    if _labelled(record.get("Labels")):
        return dict(record)
    kept = {key: value for key, value in record.items() if key not in ("Options", "Status")}
    options = record.get("Options")
    if isinstance(options, dict):
        kept["Options"] = {key: value for key, value in options.items() if key in SAFE_VOLUME_OPTIONS}
    return kept


def _only(keep: Callable[[Mapping[str, Any]], bool]) -> Callable[[Any], Any]:
    def cut(data: Any) -> Any:
        if not isinstance(data, list):
            raise ValueError("Docker answered a list call with something other than a list")
        return [item for item in data if isinstance(item, dict) and keep(item)]

    return cut


def _container(data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError("Docker answered an inspection with something other than an object")
    return data if container_is_hubs(data) else container_outline(data)


def _volume(data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError("Docker answered an inspection with something other than an object")
    return volume_outline(data)


def _volumes(data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError("Docker answered the volume list with something other than an object")
    volumes = data.get("Volumes") or []
    if not isinstance(volumes, list):
        raise ValueError("Docker's volume list holds no list")
    return {**data, "Volumes": [volume_outline(item) for item in volumes if isinstance(item, dict)]}


NARROWERS: dict[str, Callable[[Any], Any]] = {
    "containers": _only(container_is_hubs),
    "container": _container,
    "services": _only(service_is_hubs),
    "tasks": _only(task_is_hubs),
    "configs": _only(config_is_hubs),
    "volumes": _volumes,
    "volume": _volume,
}


def narrow(kind: str, data: Any) -> Any:
    """Docker's (successful) answer of kind ``kind`` as the hub may see it; ValueError for an answer of
    another shape."""
    return NARROWERS[kind](data)


__all__ = ["NARROWERS", "container_is_hubs", "narrow", "service_is_hubs", "task_is_hubs"]
