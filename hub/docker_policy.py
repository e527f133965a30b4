"""Which Docker API calls the socket proxy lets through: exactly those the hub makes, nothing more.

Whoever can call Docker freely is root on the host: one privileged container, one bind mount of ``/``
or of the Docker socket is enough. :func:`decide` is the proxy's whole policy, a pure function of the
request: the route must be one the hub uses (``hub/docker_spawner.py``, ``hub/images.py``, ``hub/usage.py``,
``hub/volume_archive.py``), and the bodies and queries that could reach the host are checked field by
field. Calls on one container (stop, remove, its log and its load, copying files) reach only the hub's own,
and so do inspecting or removing a service, and removing a volume or network. A network join or leave needs a
network of the hub's and a container of the hub's (or one the operator named to the proxy); a container, if
it mounts an existing volume, mounts one of the hub's. Lists and inspections that could show other programs'
settings are marked to be narrowed (``Decision.answer``, hub/docker_answers.py); Docker's event stream is
asked only for the hub's objects' events (:func:`hub_events`).

Docker reads JSON with Go's decoder, which matches keys case-insensitively (``privileged`` sets
``Privileged``) and lets the last duplicate win, so bodies are read the same way here: keys are folded,
duplicates and non-ASCII keys (which Go may fold too) are refused. Docker also still reads host settings
from the top level of a create body (a deprecated form), so only the fields of a container's ``Config``
may be set there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MANAGED_LABEL = "hub.managed"
"""Containers, volumes and networks the hub makes carry ``hub.managed=true`` (``hub/names.py:labels``)."""
HELPER_LABEL = "hub.backup-helper"
"""Backup helpers (hub/volume_archive.py) carry ``hub.backup-helper=true`` as well: containers made only to
copy one volume's files out or in with Docker's archive API, and never started."""
HELPER_MOUNT = "/volume"
"""Where a backup helper sees its volume: the only folder its files are copied out of."""
MAX_BODY = 1024 * 1024
MIN_API_VERSION = (1, 24)  # older versions accept a HostConfig in the start call, after the create check
VERSION_PREFIX = re.compile(r"^/v([0-9.]+)(/.*)\Z")
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
VOLUME_NAME = re.compile(rf"^{NAME}\Z")
NO_BODY = b""


def _names(text: str, fold: bool = False) -> frozenset[str]:
    """A set of names written as words (Docker's spelling; folded to lower case where Go's decoder folds)."""
    return frozenset(word.lower() if fold else word for word in text.split())


# The fields of a container's Config (Docker's container.Config); the wrapper adds HostConfig and NetworkingConfig.
CONFIG_FIELDS = _names(
    """
    Hostname Domainname User AttachStdin AttachStdout AttachStderr ExposedPorts Tty OpenStdin StdinOnce Env
    Cmd Healthcheck ArgsEscaped Image Volumes WorkingDir Entrypoint NetworkDisabled MacAddress OnBuild
    Labels StopSignal StopTimeout Shell HostConfig NetworkingConfig
    """,
    fold=True,
)
# Host settings that cannot reach the host's files, devices or namespaces: any value is fine.
FREE_HOST_FIELDS = _names(
    """
    Memory MemorySwap MemoryReservation MemorySwappiness KernelMemory NanoCpus CpuShares CpuPeriod CpuQuota
    CpuRealtimePeriod CpuRealtimeRuntime CpusetCpus CpusetMems CpuCount CpuPercent BlkioWeight PidsLimit
    Init RestartPolicy AutoRemove ShmSize Ulimits ReadonlyRootfs Dns DnsOptions DnsSearch
    ExtraHosts GroupAdd Tmpfs CapDrop ConsoleSize OomScoreAdj ContainerIDFile
    """,
    fold=True,
)
# Host settings that are fine only while empty (null, false, 0, "", [] or {}). Links too: a legacy link hands
# the linked container's whole environment (another program's secrets) to the new one.
EMPTY_HOST_FIELDS = _names(
    """
    Privileged CapAdd Capabilities Devices DeviceCgroupRules VolumesFrom PortBindings Links
    PublishAllPorts Sysctls CgroupParent Cgroup VolumeDriver OomKillDisable BlkioDeviceReadBps
    BlkioDeviceWriteBps BlkioDeviceReadIOps BlkioDeviceWriteIOps BlkioWeightDevice Isolation
    """,
    fold=True,
)
# These two are dangerous when empty ([] unmasks /proc and /sys): only absent or null.
NULL_HOST_FIELDS = frozenset({"maskedpaths", "readonlypaths"})
NAMESPACE_FIELDS = {
    "networkmode": "network",
    "pidmode": "pid",
    "ipcmode": "ipc",
    "utsmode": "uts",
    "usernsmode": "user",
    "cgroupnsmode": "cgroup",
}
GPU_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")
NOT_GPU_IDS = frozenset({"all", "none", "void"})  # words the NVIDIA runtime reads as "every GPU" or "none"
DEVICE_REQUEST_FIELDS = frozenset({"driver", "count", "deviceids", "capabilities", "options"})
SAFE_SECURITY_OPTS = frozenset({"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"})
LOG_DRIVERS = frozenset({None, "", "json-file", "local"})  # spawner.log_driver ("" or none: the daemon's own)
LOG_OPTIONS = frozenset({"max-size", "max-file", "compress"})

CREATE_QUERY = frozenset({"name", "platform"})
PULL_QUERY = frozenset({"fromImage", "tag", "platform"})
BUILD_QUERY = _names(
    """
    t q nocache rm forcerm pull dockerfile buildargs shmsize labels cachefrom target memory memswap
    cpushares cpusetcpus cpuperiod cpuquota networkmode extrahosts platform squash version
    """
)


class Refused(Exception):
    """A call the proxy does not let through; the text says why, in words an operator can act on."""


@dataclass(frozen=True)
class Decision:
    """What the proxy does with an allowed call.

    ``managed`` names an object (kind, id) that must carry this hub's label first, and the call then
    goes to that object's full id, so the name cannot be re-pointed in between. ``plain_volumes`` must,
    if they exist, be ordinary local volumes (a volume made with driver options can be a host folder) that
    carry the hub's label (another program's volume holds its data).
    ``helper``: the managed container must be a backup helper that never ran (:func:`helper_volumes`);
    ``no_helper``: it must not be one (helpers are never started, so nothing runs beside a copy).
    ``answer``: Docker's answer is narrowed to what the hub may read (a kind of hub/docker_answers.py).
    ``join``: the container a network connect or disconnect names, which must be the hub's or one the
    operator lets the hub join to its networks.
    ``query``: the query Docker gets instead of the caller's (None: the caller's).
    ``labelled_volumes``: volumes a service makes with the operator's volume driver, which must carry the hub's
    label if they exist (their driver options are the operator's, so they are not plain).
    ``networks``: networks a new container or service joins, which must be the hub's or ones the operator named
    to the proxy (``--network``, e.g. the users' network that compose or the stack makes).
    """

    route: str
    managed: tuple[str, str] | None = None
    plain_volumes: tuple[str, ...] = ()
    helper: bool = False
    no_helper: bool = False
    answer: str = ""
    join: Join | None = None
    query: tuple[tuple[str, str], ...] | None = None
    labelled_volumes: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Join:
    """A network connect (``force`` unused) or disconnect of one container, as the hub sends it."""

    container: str
    connect: bool
    force: bool = False

    def body(self, full_id: str) -> bytes:
        """The body Docker gets: the container by the full id the proxy looked up, nothing else."""
        fields: dict[str, Any] = {"Container": full_id}
        if self.connect:
            fields["EndpointConfig"] = {}
        elif self.force:
            fields["Force"] = True
        return json.dumps(fields).encode()


Check = Callable[[re.Match[str], Mapping[str, Sequence[str]], bytes], Decision]


def api_path(path: str) -> str:
    """The path without its ``/v1.xx`` prefix; too old a version is refused, and so are odd paths."""
    if "//" in path or any(part in (".", "..") for part in path.split("/")):
        raise Refused(f"the path {path!r} is not a plain API path")
    match = VERSION_PREFIX.match(path)
    if not match:
        return path
    try:
        version = tuple(int(part) for part in match.group(1).split("."))
    except ValueError:
        raise Refused(f"{match.group(1)!r} is not an API version") from None
    if version < MIN_API_VERSION:
        raise Refused(f"API version {match.group(1)} is older than 1.24, which the hub never uses")
    return match.group(2)


class Folded(dict[str, Any]):
    """A JSON object with lower-cased keys that remembers how the client spelled them (for messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.spelled: dict[str, str] = {}

    def name(self, key: str) -> str:
        return self.spelled.get(key, key)


def folded_json(body: bytes) -> Any:
    """JSON read the way Docker's Go decoder matches it: keys lower-cased, duplicates refused."""

    def pairs(items: list[tuple[str, Any]]) -> Folded:
        folded = Folded()
        for key, value in items:
            if not key.isascii():
                raise Refused(f"the key {key!r} is not ASCII")
            if key.lower() in folded:
                raise Refused(f"the key {key!r} appears twice")
            folded[key.lower()] = value
            folded.spelled[key.lower()] = key
        return folded

    if len(body) > MAX_BODY:
        raise Refused("the request body is too large")
    try:
        return json.loads(body or b"{}", object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        raise Refused("the request body is not valid JSON") from None


def empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def check_query(query: Mapping[str, Sequence[str]], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise Refused(f"{what} with the parameter {unknown[0]!r} is not a call the hub makes")


def only(query: Mapping[str, Sequence[str]], key: str) -> list[str]:
    return list(query.get(key, ()))


def volume_source(bind: str) -> str | None:
    """The named volume of a ``source:target[:mode]`` bind; a host path is refused."""
    parts = bind.split(":")
    if len(parts) == 1:
        return None  # an anonymous volume at that path
    source = parts[0]
    if not VOLUME_NAME.match(source):
        raise Refused(f"the bind {bind!r} mounts a host path; only named volumes are allowed")
    return source


def mount_source(mount: Any) -> str | None:
    if not isinstance(mount, dict):
        raise Refused("a mount is not an object")
    kind = mount.get("type")
    if kind == "tmpfs":
        return None
    if kind != "volume":
        raise Refused(f"a mount of type {kind!r} is not allowed; only named volumes are")
    if not empty(mount.get("bindoptions")):
        raise Refused("a volume mount with bind options is not allowed")
    options = mount.get("volumeoptions") or {}
    if not isinstance(options, dict) or not empty(options.get("driverconfig")):
        raise Refused("a volume mount with a driver configuration is not allowed")
    source = mount.get("source") or ""
    if source and (not isinstance(source, str) or not VOLUME_NAME.match(source)):
        raise Refused(f"the mount source {source!r} is not a volume name")
    return source or None


def check_namespace(field: str, value: Any) -> None:
    if empty(value):
        return
    if not isinstance(value, str):
        raise Refused(f"the {NAMESPACE_FIELDS[field]} namespace setting is not a string")
    if value == "host" or value.startswith("container:") or value.startswith("ns:"):
        raise Refused(
            f"sharing the {NAMESPACE_FIELDS[field]} namespace of the host or of another container "
            f"({value!r}) is not allowed"
        )


def check_device_requests(requests: Any) -> None:
    """GPUs only as the hub asks for them (hub/docker_spawner.py, ``gpu_requests``): the nvidia driver, the
    capability ``gpu``, explicit GPU ids and nothing else (no count, no options, no other driver)."""
    if empty(requests):
        return
    if not isinstance(requests, list):
        raise Refused("HostConfig.DeviceRequests must be a list")
    for request in requests:
        if not isinstance(request, Folded) or set(request) - DEVICE_REQUEST_FIELDS:
            raise Refused("a device request the hub does not make (only driver, ids and capabilities)")
        if request.get("driver") != "nvidia":
            raise Refused(f"the device driver {request.get('driver')!r} is not allowed; the hub asks for nvidia GPUs")
        if request.get("count") not in (None, 0):
            raise Refused("a device request by count (such as every GPU) is not allowed; the hub names its GPUs")
        if request.get("capabilities") != [["gpu"]]:
            raise Refused("only the device capability 'gpu' is allowed")
        if not empty(request.get("options")):
            raise Refused("device request options are not allowed")
        ids = request.get("deviceids")
        if not isinstance(ids, list) or not ids:
            raise Refused("a device request must name the GPUs it wants")
        for ident in ids:
            if not isinstance(ident, str) or not GPU_ID.match(ident) or ident.lower() in NOT_GPU_IDS:
                raise Refused(f"{ident!r} is not a GPU id (an index or a UUID)")


def check_log_config(value: Any) -> None:
    """Logs stay in rotated files on the host (hub/docker_spawner.py, ``log_config``). A driver that sends them
    elsewhere (syslog, gelf, splunk, awslogs, ...) makes the daemon a client of any address the caller names, from
    the host's network and with the daemon's credentials."""
    if empty(value):
        return
    if not isinstance(value, Folded) or set(value) - {"type", "config"}:
        raise Refused("HostConfig.LogConfig holds more than a log driver and its options")
    if value.get("type") not in LOG_DRIVERS:
        raise Refused(f"the log driver {value.get('type')!r} is not allowed; the hub uses json-file or local")
    options = value.get("config") or {}
    if not isinstance(options, dict) or set(options) - LOG_OPTIONS:
        raise Refused(f"log options other than {', '.join(sorted(LOG_OPTIONS))} are not allowed")


def check_host_config(host: Any) -> tuple[str, ...]:
    """Refuse every host setting that reaches the host; return the named volumes it mounts."""
    if not isinstance(host, Folded):
        raise Refused("HostConfig must be an object")
    volumes: list[str] = []
    for field, value in host.items():
        if field in FREE_HOST_FIELDS:
            continue
        if field in EMPTY_HOST_FIELDS:
            if not empty(value):
                raise Refused(f"HostConfig.{host.name(field)} is not allowed (the hub never sets it)")
        elif field in NULL_HOST_FIELDS:
            if value is not None:
                raise Refused(f"HostConfig.{host.name(field)} is not allowed (it would unmask host paths)")
        elif field in NAMESPACE_FIELDS:
            check_namespace(field, value)
        elif field == "devicerequests":
            check_device_requests(value)
        elif field == "logconfig":
            check_log_config(value)
        elif field == "securityopt":
            for option in value or []:
                if option not in SAFE_SECURITY_OPTS:
                    raise Refused(f"the security option {option!r} is not allowed")
        elif field == "runtime":
            if value not in (None, "", "runc"):
                raise Refused(f"the runtime {value!r} is not allowed")
        elif field == "storageopt":
            if not isinstance(value or {}, dict) or set(value or {}) - {"size"}:
                raise Refused("only the storage option 'size' is allowed")
        elif field == "binds":
            volumes += [name for bind in value or [] if (name := volume_source(str(bind)))]
        elif field == "mounts":
            volumes += [name for mount in value or [] if (name := mount_source(mount))]
        else:
            raise Refused(f"HostConfig.{host.name(field)} is not a setting the hub uses")
    return tuple(volumes)


def labelled(body: dict[str, Any]) -> bool:
    labels = body.get("labels") or {}
    return isinstance(labels, dict) and labels.get(MANAGED_LABEL) == "true"


# -- the routes ------------------------------------------------------------------------------------
def free(name: str, answer: str = "") -> Check:
    """Calls that change nothing; ``answer``: Docker's answer is narrowed (hub/docker_answers.py)."""

    def allow(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
        return Decision(name, answer=answer)

    return allow


def without_body(name: str) -> Check:
    def allow(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
        if body.strip() not in (b"", b"{}", b"null"):
            raise Refused(f"{name} with a request body is not allowed")
        return Decision(name)

    return allow


def managed(kind: str, name: str, no_helper: bool = False) -> Check:
    """Start, stop, remove, logs, stats: no body (old API versions read settings from it), and only the hub's
    own objects (``no_helper``: and not a backup helper)."""

    def allow(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
        without_body(name)(match, query, body)
        return Decision(name, managed=(kind, match.group("id")), no_helper=no_helper)

    return allow


def network_join(connect: bool) -> Check:
    """``POST /networks/{id}/connect`` and ``.../disconnect`` (hub/networks.py, ``spawner.connect_containers``):
    a network of the hub, one container, and no endpoint settings (an address or alias of someone else's)."""
    name = "connect a container to a network" if connect else "disconnect a container from a network"
    allowed = frozenset({"container", "endpointconfig"} if connect else {"container", "force"})

    def check(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
        check_query(query, frozenset(), name)
        spec = folded_json(body)
        if not isinstance(spec, Folded):
            raise Refused(f"the body of a call to {name} must be an object")
        for key, value in spec.items():
            if key not in allowed and not empty(value):
                raise Refused(f"{spec.name(key)} is not a setting the hub uses to {name}")
        if not empty(spec.get("endpointconfig")):
            raise Refused("choosing a container's address, aliases or links on a network is not something the hub does")
        container = spec.get("container")
        if not isinstance(container, str) or container in ("", ".", "..") or "/" in container:
            raise Refused(f"a call to {name} must name one container")
        join = Join(container, connect, force=spec.get("force") is True)
        return Decision(name, managed=("networks", match.group("id")), join=join)

    return check


def hub_events(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``GET /events`` (hub/docker_events.py): only the events of the hub's own objects. Every event carries its
    container's labels, name and image, and an exec's command line, so the proxy adds the filter
    ``label=hub.managed=true``, which Docker requires together with the caller's own filters."""
    name = "watch containers stop"
    check_query(query, frozenset({"since", "until", "filters"}), "watching Docker's events")
    kept = [(key, value) for key in ("since", "until") for value in only(query, key)]
    return Decision(name, query=(*kept, ("filters", hub_only_filters(only(query, "filters")))))


def hub_only_filters(given: Sequence[str]) -> str:
    """The caller's event filters (Docker's list or map form) with ``label=hub.managed=true`` added, as JSON."""
    if len(given) > 1:
        raise Refused("watching Docker's events with more than one filters parameter is not a call the hub makes")
    try:
        filters = json.loads(given[0]) if given and given[0] else {}
    except (ValueError, RecursionError):
        raise Refused("the filters of a call to watch Docker's events are not valid JSON") from None
    if not isinstance(filters, dict):
        raise Refused("the filters of a call to watch Docker's events must be an object")
    merged: dict[str, dict[str, bool]] = {}
    for key, values in filters.items():
        if isinstance(values, dict):
            values = list(values)
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise Refused(f"the event filter {key!r} must be a list of words")
        merged[key] = dict.fromkeys(values, True)
    merged.setdefault("label", {})[f"{MANAGED_LABEL}=true"] = True
    return json.dumps(merged)


def archive_path(query: Mapping[str, Sequence[str]], what: str, root_too: bool) -> None:
    """The one ``path`` of an archive call: the helper's volume folder or below it (``root_too``: or ``/``)."""
    check_query(query, frozenset({"path"}), what)
    paths = only(query, "path")
    path = paths[0] if len(paths) == 1 else ""
    inside = path == HELPER_MOUNT or path.startswith(HELPER_MOUNT + "/")
    if not (inside or (root_too and path == "/")) or ".." in path.split("/"):
        raise Refused(f"{what} with the path {path[:100]!r} is not allowed; only {HELPER_MOUNT} of a backup helper")


def archive_out(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``hub backup --volumes``: a volume's files, read out of a backup helper that never ran."""
    name = "copy files out of a backup helper"
    without_body(name)(match, query, body)
    archive_path(query, name, root_too=False)
    return Decision(name, managed=("containers", match.group("id")), helper=True)


def archive_in(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """``hub restore --volumes``: a tar of ``volume/...`` unpacked into a backup helper that never ran."""
    name = "copy files into a backup helper"
    archive_path(query, name, root_too=True)
    return Decision(name, managed=("containers", match.group("id")), helper=True)


def container_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    check_query(query, CREATE_QUERY, "creating a container")
    config = folded_json(body)
    if not isinstance(config, Folded):
        raise Refused("the container configuration must be an object")
    for field, value in config.items():
        if field not in CONFIG_FIELDS and value is not None:
            raise Refused(
                f"{config.name(field)!r} at the top level of a container configuration is not allowed "
                "(Docker would read it as a host setting)"
            )
    if not labelled(config):
        raise Refused(f"a container without the label {MANAGED_LABEL}=true is not one the hub makes")
    host = config.get("hostconfig")
    if host is None:
        raise Refused("a container configuration without HostConfig is not one the hub makes")
    volumes = check_host_config(host)
    return Decision("create a container", plain_volumes=volumes, networks=container_networks(config, host))


def container_networks(config: Folded, host: Folded) -> tuple[str, ...]:
    """The networks a new container joins (its NetworkMode and any EndpointsConfig), for the proxy to check;
    settings on a network (address, aliases, links) are refused. ``default``/``bridge`` (Docker's own bridge,
    where other programs' containers are) only with networking off, as for a backup helper."""
    joined: list[str] = []
    mode = host.get("networkmode")
    if isinstance(mode, str) and mode not in ("", "none"):
        if mode in ("default", "bridge"):
            if config.get("networkdisabled") is not True:
                raise Refused("Docker's default bridge network is not one the hub's containers join")
        else:
            joined.append(mode)
    networking = config.get("networkingconfig")
    if not empty(networking):
        if not isinstance(networking, Folded):
            raise Refused("NetworkingConfig must be an object")
        for field, value in networking.items():
            if field != "endpointsconfig":
                if value is not None:  # the docker SDK sends {network: null}, which Docker ignores
                    raise Refused(f"NetworkingConfig.{networking.name(field)} is not a setting the hub uses")
                continue
            if not isinstance(value, Folded):
                raise Refused("NetworkingConfig.EndpointsConfig must be an object")
            for network, endpoint in value.items():
                if not empty(endpoint):
                    raise Refused("choosing a container's address, aliases or links on a network is not allowed")
                joined.append(value.name(network))
    return tuple(dict.fromkeys(joined))


def volume_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    spec = folded_json(body)
    if not isinstance(spec, dict):
        raise Refused("the volume specification must be an object")
    if spec.get("driver") not in (None, "", "local"):
        raise Refused(f"the volume driver {spec.get('driver')!r} is not allowed")
    options = spec.get("driveropts") or {}
    if not isinstance(options, dict) or set(options) - {"size"}:
        raise Refused("volume driver options (a volume that is a host folder) are not allowed")
    if set(spec) - {"name", "driver", "driveropts", "labels", "clustervolumespec"}:
        raise Refused("that volume specification is not one the hub makes")
    if not empty(spec.get("clustervolumespec")):
        raise Refused("cluster volumes are not allowed")
    return Decision("create a volume")


def network_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    spec = folded_json(body)
    if not isinstance(spec, dict):
        raise Refused("the network specification must be an object")
    if spec.get("driver") not in (None, "", "bridge", "overlay"):  # overlay: spawner.backend swarm
        raise Refused(f"the network driver {spec.get('driver')!r} is not allowed; the hub makes bridge networks")
    for field in ("configfrom", "configonly", "ingress", "scope"):
        if not empty(spec.get(field)) and spec.get(field) != "local":
            raise Refused(f"the network setting {field!r} is not allowed")
    options = spec.get("options") or {}
    if not isinstance(options, dict) or "com.docker.network.bridge.name" in options:
        raise Refused("choosing the host's bridge interface is not allowed")
    return Decision("create a network")


def image_pull(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    check_query(query, PULL_QUERY, "creating an image")
    if not only(query, "fromImage"):
        raise Refused("importing an image (no fromImage) is not a call the hub makes")
    return Decision("pull an image")


def image_build(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    check_query(query, BUILD_QUERY, "building an image")
    for mode in only(query, "networkmode"):
        if mode not in ("", "default", "bridge"):
            raise Refused(f"building with the network {mode!r} is not allowed")
    for version in only(query, "version"):
        if version != "1":
            raise Refused("only the classic builder is allowed")
    return Decision("build an image")


def service_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """A Swarm service of the hub: checked field by field in hub/swarm_policy.py."""
    from hub.swarm_policy import service_create as check

    return check(match, query, body)


def config_create(match: re.Match[str], query: Mapping[str, Sequence[str]], body: bytes) -> Decision:
    """The record of a volume's node: checked in hub/swarm_policy.py."""
    from hub.swarm_policy import config_create as check

    return check(match, query, body)


ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Check]] = [
    (method, re.compile(rf"^{pattern}\Z"), check)
    for method, pattern, check in (
        ("GET", "/_ping", free("ping")),
        ("HEAD", "/_ping", free("ping")),
        ("GET", "/version", free("read the version")),
        ("GET", "/info", free("read the storage driver")),  # spawner.writable_layer_size is checked with it
        ("GET", "/images/(?P<id>.+)/json", free("inspect an image")),
        ("POST", "/images/create", image_pull),
        ("POST", "/build", image_build),
        ("GET", "/networks", free("list networks")),
        ("GET", f"/networks/{ID}", free("inspect a network")),
        ("POST", "/networks/create", network_create),
        ("POST", f"/networks/{ID}/connect", network_join(connect=True)),
        ("POST", f"/networks/{ID}/disconnect", network_join(connect=False)),
        ("DELETE", f"/networks/{ID}", managed("networks", "remove a network")),
        ("GET", "/volumes", free("list volumes", answer="volumes")),
        ("GET", f"/volumes/{ID}", free("inspect a volume", answer="volume")),
        ("POST", "/volumes/create", volume_create),
        ("DELETE", f"/volumes/{ID}", managed("volumes", "remove a volume")),
        ("GET", "/containers/json", free("list containers", answer="containers")),
        ("GET", "/events", hub_events),  # hub/docker_events.py
        ("POST", "/containers/create", container_create),
        ("GET", f"/containers/{ID}/json", free("inspect a container", answer="container")),
        ("GET", f"/containers/{ID}/logs", managed("containers", "read a container's log")),
        ("GET", f"/containers/{ID}/stats", managed("containers", "read a container's CPU and memory")),  # usage.py
        ("GET", f"/containers/{ID}/archive", archive_out),  # hub/volume_archive.py
        ("PUT", f"/containers/{ID}/archive", archive_in),
        ("POST", f"/containers/{ID}/wait", free("wait for a container")),
        ("POST", f"/containers/{ID}/start", managed("containers", "start a container", no_helper=True)),
        ("POST", f"/containers/{ID}/stop", managed("containers", "stop a container")),
        ("POST", f"/containers/{ID}/restart", managed("containers", "restart a container", no_helper=True)),
        ("POST", f"/containers/{ID}/kill", managed("containers", "kill a container")),
        ("DELETE", f"/containers/{ID}", managed("containers", "remove a container")),
        # spawner.backend: swarm (hub/swarm_spawner.py): the hub's services, their tasks and nodes' names
        ("GET", "/services", free("list services", answer="services")),
        ("POST", "/services/create", service_create),
        ("GET", f"/services/{ID}", managed("services", "inspect a service")),
        ("GET", f"/services/{ID}/logs", managed("services", "read a service's log")),
        ("DELETE", f"/services/{ID}", managed("services", "remove a service")),
        ("GET", "/tasks", free("list tasks", answer="tasks")),
        ("GET", f"/nodes/{ID}", free("inspect a node")),
        # the node each user's volume is on (hub/swarm_placement.py): small configs holding a node's ID
        ("GET", "/configs", free("list the nodes of volumes", answer="configs")),  # others' configs: secrets
        ("POST", "/configs/create", config_create),
        ("DELETE", f"/configs/{ID}", managed("configs", "remove the record of a volume's node")),
    )
]


def decide(method: str, path: str, query: Mapping[str, Sequence[str]], body: bytes = NO_BODY) -> Decision:
    """Allow the call (with what the proxy must verify first) or raise :class:`Refused`."""
    path = api_path(path)
    for route_method, pattern, check in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return check(match, query, body)
    raise Refused(f"{method} {path} is not a call the hub makes")


def reads_body(method: str, path: str) -> bool:
    """Calls whose whole body the policy reads (small JSON); other bodies (a build's context, a volume's tar)
    stream through unread."""
    try:
        path = api_path(path)
    except Refused:
        return False
    return not ((method == "POST" and path == "/build") or (method == "PUT" and path.endswith("/archive")))


def carries_label(attrs: Mapping[str, Any]) -> bool:
    """Whether an inspected container, volume, network or service is one this hub made."""
    labels = (attrs.get("Config") or {}).get("Labels") if "Config" in attrs else attrs.get("Labels")
    if "Spec" in attrs:  # a service: its labels are in its specification
        labels = (attrs.get("Spec") or {}).get("Labels")
    return isinstance(labels, dict) and labels.get(MANAGED_LABEL) == "true"


def is_helper(attrs: Mapping[str, Any]) -> bool:
    """Whether an inspected container is a backup helper."""
    labels = (attrs.get("Config") or {}).get("Labels")
    return isinstance(labels, dict) and labels.get(HELPER_LABEL) == "true"


NEVER_STARTED = frozenset({None, "", "0001-01-01T00:00:00Z"})


def helper_volumes(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The one volume of an inspected backup helper that may have files copied out or in: the helper carries
    the helper label, has never run (no process could race the copy) and mounts exactly one named local volume,
    at ``/volume`` (a second one, at ``/volume/x``, would be copied along without being checked). Raises
    :class:`Refused` otherwise. The proxy then checks that the volume is the hub's."""
    if not is_helper(attrs):
        raise Refused(f"only a backup helper the hub made (label {HELPER_LABEL}=true) has files copied out or in")
    state = attrs.get("State") or {}
    if state.get("Status") != "created" or state.get("StartedAt") not in NEVER_STARTED:
        raise Refused("this backup helper has been started; files are copied only out of helpers that never ran")
    host = attrs.get("HostConfig") or {}
    for field in ("Privileged", "VolumesFrom", "Devices", "CapAdd"):
        if not empty(host.get(field)):
            raise Refused(f"a backup helper with HostConfig.{field} is not one the hub makes")
    mounts = attrs.get("Mounts") or []
    for mount in mounts:
        if not isinstance(mount, dict) or mount.get("Type") != "volume" or mount.get("Driver") not in ("local", None):
            raise Refused("a backup helper that mounts anything but a named local volume (a host path) is not allowed")
    for bind in host.get("Binds") or []:
        volume_source(str(bind))
    if len(mounts) != 1 or len(host.get("Binds") or []) > 1 or not empty(host.get("Mounts")):
        raise Refused(
            f"a backup helper mounts exactly one volume, at {HELPER_MOUNT}; this one mounts {len(mounts)} "
            "(an image that declares VOLUME folders cannot be the helper image)"
        )
    name = str(mounts[0].get("Name") or "")
    if mounts[0].get("Destination") != HELPER_MOUNT or not name:
        raise Refused(f"a backup helper without a named volume at {HELPER_MOUNT} is not one the hub makes")
    return (name,)


def plain_volume(attrs: Mapping[str, Any]) -> bool:
    """A local volume without driver options (with them, a volume can be any folder of the host)."""
    options = attrs.get("Options") or {}
    return attrs.get("Driver") in ("local", None) and set(options) <= {"size"}


__all__ = [
    "Decision",
    "Refused",
    "carries_label",
    "decide",
    "helper_volumes",
    "is_helper",
    "plain_volume",
    "reads_body",
]
