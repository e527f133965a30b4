"""The socket proxy's policy: the hub's own calls pass, everything that could reach the host does not."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import docker
import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.docker_http import DockerHTTP
from hub.docker_policy import Refused, carries_label, decide, helper_volumes, is_helper, plain_volume, reads_body
from hub.docker_spawner import DockerSpawner
from hub.spawner import SpawnRequest

CREATE = "/v1.41/containers/create"


class Captured(Exception):
    """Raised with the body instead of sending it."""


def hub_create_body(gpu_ids: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    """The body the hub's DockerSpawner sends to create a server (captured as it leaves hub/docker_http.py)."""
    spawner = DockerSpawner(SpawnerSection(prefix="hub", network="containerhub"))
    spawner._client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    captured: dict[str, Any] = {}

    class Capture(DockerHTTP):
        async def request(self, method: str, path: str, **kwargs: Any) -> Any:
            assert (method, path) == ("POST", "/containers/create")
            captured.update(kwargs["body"])
            raise Captured

    spawner._engine = Capture(spawner._client.api, spawner._call)
    image = ImageSpec(name="lab", image="containerhub-jupyterlab:latest", mem_limit="1g", cpu_limit=1.0)
    request = SpawnRequest(
        "alice", names.user_slug("alice"), image, "/user/alice/", secrets.token_urlsafe(8), gpu_ids=gpu_ids
    )
    volume = names.volume_name("hub", request.slug)
    with pytest.raises(Captured):
        asyncio.run(
            spawner._create(
                request,
                names.container_name("hub", request.slug),
                volume,
                names.labels("hub", "alice", request.slug),
                "containerhub",
            )
        )
    spawner._executor.shutdown()
    return json.loads(json.dumps(captured)), volume


def create(body: dict[str, Any]) -> Any:
    return decide("POST", CREATE, {"name": ["hub-user-alice"]}, json.dumps(body).encode())


def test_the_container_the_hub_creates_passes_and_its_volume_is_checked() -> None:
    body, volume = hub_create_body()
    decision = create(body)
    assert decision.plain_volumes == (volume,)
    assert decision.managed is None


SDK_CALLS = [
    ("GET", "/_ping", {}),
    ("HEAD", "/_ping", {}),
    ("GET", "/version", {}),
    ("GET", "/v1.41/info", {}),
    ("GET", "/v1.41/images/containerhub-jupyterlab:latest/json", {}),
    ("GET", "/v1.41/images/quay.io/jupyter/datascience-notebook:2024-01/json", {}),
    ("POST", "/v1.41/images/create", {"fromImage": ["quay.io/jupyter/base"], "tag": ["latest"]}),
    (
        "POST",
        "/v1.41/build",
        {
            "t": ["containerhub-jupyterlab:latest"],
            "q": ["False"],
            "nocache": ["False"],
            "rm": ["True"],
            "forcerm": ["True"],
            "pull": ["False"],
            "buildargs": ['{"BASE_IMAGE": "python:3.12-slim"}'],
        },
    ),
    ("GET", "/v1.41/networks/containerhub", {}),
    ("POST", "/v1.41/networks/create", {}),
    ("GET", "/v1.41/volumes/hub-home-alice", {}),
    ("POST", "/v1.41/volumes/create", {}),
    ("GET", "/v1.41/containers/json", {"all": ["1"], "filters": ['{"label": ["hub.managed=true"]}']}),
    ("GET", "/v1.41/containers/hub-user-alice/json", {}),
    ("POST", "/v1.41/containers/0123abcd/wait", {}),
    ("GET", "/v1.41/events", {"filters": ['{"type": ["container"], "event": ["die"], "label": ["hub.prefix=hub"]}']}),
]


@pytest.mark.parametrize(("method", "path", "query"), SDK_CALLS)
def test_every_call_the_hub_makes_passes(method: str, path: str, query: dict[str, list[str]]) -> None:
    assert decide(method, path, query).managed is None


@pytest.mark.parametrize(
    ("method", "path", "managed"),
    [
        ("POST", "/v1.41/containers/hub-user-alice/start", ("containers", "hub-user-alice")),
        ("POST", "/v1.41/containers/hub-user-alice/stop", ("containers", "hub-user-alice")),
        ("DELETE", "/v1.41/containers/hub-user-alice", ("containers", "hub-user-alice")),
        ("DELETE", "/v1.41/volumes/hub-home-alice", ("volumes", "hub-home-alice")),
        ("DELETE", "/v1.41/networks/hub-users", ("networks", "hub-users")),
        ("GET", "/v1.41/containers/0123abcd/logs", ("containers", "0123abcd")),
        ("GET", "/v1.41/containers/0123abcd/stats", ("containers", "0123abcd")),
    ],
)
def test_changing_an_object_needs_it_to_be_the_hubs(method: str, path: str, managed: tuple[str, str]) -> None:
    """Start, stop and remove touch only what carries the hub's label (the proxy looks it up first); reading
    a container's log or its CPU and memory too (other containers' logs and load are not the hub's business)."""
    assert decide(method, path, {}).managed == managed


def test_reading_stats_and_logs_is_limited_to_the_hubs_containers() -> None:
    """Security fix: stats (and logs) were let through for every container on the host."""
    stats = decide("GET", "/v1.41/containers/traefik/stats", {"stream": ["False"], "one-shot": ["True"]})
    assert stats.managed == ("containers", "traefik")
    logs = decide("GET", "/v1.41/containers/traefik/logs", {"stdout": ["1"], "tail": ["20"]})
    assert logs.managed == ("containers", "traefik")


def test_archive_calls_reach_only_backup_helpers_that_never_ran() -> None:
    """Copying files out of or into a container is for backup helpers, at their volume folder only."""
    out = decide("GET", "/v1.41/containers/abc/archive", {"path": ["/volume"]})
    assert (out.managed, out.helper) == (("containers", "abc"), True)
    into = decide("PUT", "/v1.41/containers/abc/archive", {"path": ["/"]})
    assert (into.managed, into.helper) == (("containers", "abc"), True)
    assert not reads_body("PUT", "/v1.41/containers/abc/archive")  # the tar streams through
    for method, query in [
        ("GET", {"path": ["/etc"]}),
        ("GET", {"path": ["/"]}),
        ("GET", {"path": ["/volume/../etc"]}),
        ("GET", {}),
        ("GET", {"path": ["/volume", "/etc"]}),
        ("PUT", {"path": ["/etc"]}),
        ("PUT", {"path": ["/"], "copyUIDGID": ["1"]}),
    ]:
        with pytest.raises(Refused):
            decide(method, "/v1.41/containers/abc/archive", query)
    assert decide("POST", "/v1.41/containers/abc/start", {}).no_helper
    assert decide("POST", "/v1.41/containers/abc/restart", {}).no_helper


def helper(**change: Any) -> dict[str, Any]:
    """A backup helper as Docker inspects it: created, never started, one named local volume."""
    attrs: dict[str, Any] = {
        "Config": {"Labels": {"hub.managed": "true", "hub.backup-helper": "true"}},
        "State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"},
        "HostConfig": {"Binds": ["hub-data-alice:/volume:ro"], "Privileged": False},
        "Mounts": [{"Type": "volume", "Name": "hub-data-alice", "Driver": "local", "Destination": "/volume"}],
    }
    attrs.update(change)
    return attrs


def test_a_helper_mounts_exactly_one_volume() -> None:
    """Security fix: a second volume (at /volume/x it is copied along with the first) was only checked for being
    local, not for being the hub's, so another program's volume could be read out or written into."""
    foreign = {"Type": "volume", "Name": "other-apps-db", "Driver": "local", "Destination": "/volume/x"}
    two = helper(Mounts=[*helper()["Mounts"], foreign])
    two["HostConfig"]["Binds"].append("other-apps-db:/volume/x")
    with pytest.raises(Refused, match="exactly one volume"):
        helper_volumes(two)
    elsewhere = {"Type": "volume", "Name": "hub-data-alice", "Driver": "local", "Destination": "/data"}
    with pytest.raises(Refused, match="without a named volume"):
        helper_volumes(helper(Mounts=[elsewhere]))


def test_a_helper_must_never_have_run_and_mount_only_volumes() -> None:
    assert helper_volumes(helper()) == ("hub-data-alice",)
    refused = [
        helper(Config={"Labels": {"hub.managed": "true"}}),  # a user's server
        helper(State={"Status": "exited", "StartedAt": "2026-11-26T10:00:00Z"}),
        helper(State={"Status": "running", "StartedAt": "2026-11-26T10:00:00Z"}),
        helper(Mounts=[{"Type": "bind", "Source": "/", "Destination": "/volume"}]),
        helper(Mounts=[{"Type": "volume", "Name": "nfs", "Driver": "some-plugin", "Destination": "/volume"}]),
        helper(HostConfig={"Binds": ["/etc:/volume"]}),
        helper(HostConfig={"Privileged": True}),
        helper(Mounts=[]),  # nothing at /volume
    ]
    for attrs in refused:
        with pytest.raises(Refused):
            helper_volumes(attrs)
    assert is_helper(helper()) and not is_helper({"Config": {"Labels": {"hub.managed": "true"}}})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1.41/containers/hub-user-alice/exec"),
        ("POST", "/v1.41/exec/abc/start"),
        ("POST", "/v1.41/containers/hub-user-alice/attach"),
        ("GET", "/v1.41/containers/hub-user-alice/attach/ws"),
        ("HEAD", "/v1.41/containers/hub-user-alice/archive"),
        ("GET", "/v1.41/containers/hub-user-alice/export"),
        ("POST", "/v1.41/containers/hub-user-alice/update"),
        ("POST", "/v1.41/commit"),
        ("DELETE", "/v1.41/images/containerhub-jupyterlab:latest"),
        ("POST", "/v1.41/images/containerhub-jupyterlab/push"),
        ("POST", "/v1.41/images/load"),
        ("POST", "/v1.41/containers/prune"),
        ("POST", "/v1.41/volumes/prune"),
        ("POST", "/v1.41/swarm/init"),
        ("POST", "/v1.41/services/create"),
        ("POST", "/v1.41/plugins/pull"),
        ("POST", "/v1.41/session"),
        ("POST", "/v1.23/containers/hub-user-alice/start"),  # old versions take a HostConfig at start
        ("POST", "/v1/containers/hub-user-alice/start"),
        ("POST", "/v1.41/containers/x/../../exec/abc/start"),
        ("POST", "//containers/create"),
        ("GET", "/v1.41/containers/a/json/"),
    ],
)
def test_calls_the_hub_never_makes_are_refused(method: str, path: str) -> None:
    with pytest.raises(Refused):
        decide(method, path, {})


def modified(change: dict[str, Any], top: dict[str, Any] | None = None) -> dict[str, Any]:
    body, _ = hub_create_body()
    body["HostConfig"].update(change)
    body.update(top or {})
    return body


@pytest.mark.parametrize(
    "change",
    [
        {"Privileged": True},
        {"CapAdd": ["SYS_ADMIN"]},
        {"Capabilities": ["CAP_SYS_ADMIN"]},
        {"NetworkMode": "host"},
        {"NetworkMode": "container:hub-socket-proxy"},
        {"PidMode": "host"},
        {"IpcMode": "host"},
        {"UTSMode": "host"},
        {"UsernsMode": "host"},
        {"CgroupnsMode": "host"},
        {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]},
        {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]},
        {"DeviceCgroupRules": ["b *:* rwm"]},
        {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
        {"Binds": ["/:/host"]},
        {"Binds": ["hub-home-alice:/home/jovyan:rw", "/etc:/etc2:ro"]},
        {"Binds": ["./relative:/x"]},
        {"Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"}]},
        {
            "Mounts": [
                {
                    "Type": "volume",
                    "Source": "v",
                    "Target": "/x",
                    "VolumeOptions": {
                        "DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/"}}
                    },
                }
            ]
        },
        {"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/x"}]},
        {"VolumesFrom": ["hub-socket-proxy"]},
        {"SecurityOpt": ["seccomp=unconfined"]},
        {"SecurityOpt": ["apparmor=unconfined"]},
        {"SecurityOpt": ["label=disable"]},
        {"SecurityOpt": ["systempaths=unconfined"]},
        {"MaskedPaths": []},
        {"ReadonlyPaths": []},
        {"PortBindings": {"8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8888"}]}},
        {"PublishAllPorts": True},
        {"Sysctls": {"net.ipv4.ip_forward": "1"}},
        {"Runtime": "runsc-with-host-fs"},
        {"CgroupParent": "/system.slice"},
        {"StorageOpt": {"size": "1G", "dm.thinpooldev": "x"}},
        {"SomethingNew": True},
        {"Links": ["postgres:db"]},  # security fix: a legacy link hands over the linked container's environment
        {"LogConfig": {"Type": "splunk", "Config": {"splunk-url": "http://169.254.169.254/"}}},  # security fix
        {"LogConfig": {"Type": "syslog", "Config": {"syslog-address": "tcp://127.0.0.1:22"}}},
        {"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "labels-regex": ".*"}}},
        {"LogConfig": {"Type": "local", "Other": 1}},
        {"privileged": True},  # Go's decoder matches keys without regard to case
        {"PRIVILEGED": 1},
    ],
)
def test_a_container_that_could_reach_the_host_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(Refused):
        create(modified(change))


@pytest.mark.parametrize(
    "top",
    [
        {"Privileged": True},  # Docker still reads host settings at the top level
        {"Binds": ["/:/host"]},
        {"HostConfig": None},
        {"Labels": {"other": "x"}},  # not a container the hub makes
    ],
)
def test_the_top_level_of_a_create_body_is_checked_too(top: dict[str, Any]) -> None:
    with pytest.raises(Refused):
        create(modified({}, top))


def test_case_and_duplicate_tricks_are_refused() -> None:
    body, _ = hub_create_body()
    text = json.dumps(body)
    duplicate = text.replace('"HostConfig": {', '"HostConfig": {"Privileged": false, "privileged": true, ', 1)
    with pytest.raises(Refused, match="appears twice"):
        decide("POST", CREATE, {}, duplicate.encode())
    folded = text.replace('"HostConfig": {', '"HostConfig": {"Bind\u017f": ["/:/host"], ', 1)  # long s folds to s
    with pytest.raises(Refused, match="not ASCII"):
        decide("POST", CREATE, {}, folded.encode())
    for bad in (b"[1]", b"not json", b"{" * 100_000):
        with pytest.raises(Refused):
            decide("POST", CREATE, {}, bad)


def test_safe_host_settings_the_hub_may_add_later_pass() -> None:
    body = modified(
        {
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
            "StorageOpt": {"size": "10G"},
            "Mounts": [{"Type": "tmpfs", "Target": "/tmp"}],
            "SecurityOpt": ["no-new-privileges:true"],
            "ReadonlyRootfs": False,
            "Privileged": False,
            "CapAdd": None,
            "NetworkMode": "hub-users-alice",
        }
    )
    assert create(body).plain_volumes


@pytest.mark.parametrize(
    ("path", "body", "allowed"),
    [
        ("/volumes/create", {"Name": "hub-home-alice", "Labels": {"hub.managed": "true"}}, True),
        ("/volumes/create", {"Name": "v", "Driver": "local", "DriverOpts": {"size": "1G"}}, True),
        ("/volumes/create", {"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}, False),
        ("/volumes/create", {"Name": "v", "Driver": "some-plugin"}, False),
        (
            "/networks/create",
            {
                "Name": "hub-users",
                "Driver": "bridge",
                "CheckDuplicate": True,
                "Internal": True,
                "Options": {"com.docker.network.bridge.enable_icc": "false"},
            },
            True,
        ),
        ("/networks/create", {"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}}, False),
        ("/networks/create", {"Name": "n", "Driver": "host"}, False),
        ("/networks/create", {"Name": "n", "Options": {"com.docker.network.bridge.name": "docker0"}}, False),
        ("/networks/create", {"Name": "n", "ConfigFrom": {"Network": "other"}}, False),
    ],
)
def test_volumes_and_networks_are_plain(path: str, body: dict[str, Any], allowed: bool) -> None:
    call = lambda: decide("POST", f"/v1.41{path}", {}, json.dumps(body).encode())  # noqa: E731
    if allowed:
        call()
    else:
        with pytest.raises(Refused):
            call()


@pytest.mark.parametrize(
    "query",
    [
        {"t": ["x"], "networkmode": ["host"]},
        {"t": ["x"], "remote": ["https://example.org/context.tar"]},
        {"t": ["x"], "cgroupparent": ["/"]},
        {"t": ["x"], "version": ["2"]},
    ],
)
def test_builds_stay_on_their_own_network(query: dict[str, list[str]]) -> None:
    with pytest.raises(Refused):
        decide("POST", "/v1.41/build", query)


def test_images_are_pulled_not_imported() -> None:
    with pytest.raises(Refused):
        decide("POST", "/v1.41/images/create", {"fromSrc": ["http://example.org/rootfs.tar"], "repo": ["x"]})
    with pytest.raises(Refused):
        decide("POST", "/v1.41/images/create", {"fromSrc": ["-"]})


def test_start_takes_no_body() -> None:
    with pytest.raises(Refused, match="request body"):
        decide("POST", "/v1.41/containers/x/start", {}, b'{"Privileged": true}')
    assert decide("POST", "/v1.41/containers/x/start", {}, b"").managed == ("containers", "x")


def test_labels_and_volume_records() -> None:
    assert carries_label({"Config": {"Labels": {"hub.managed": "true"}}})
    assert not carries_label({"Config": {"Labels": {"hub.managed": "false"}}})
    assert not carries_label({"Config": {"Labels": None}})
    assert carries_label({"Labels": {"hub.managed": "true"}, "Name": "v"})
    assert plain_volume({"Driver": "local", "Options": None})
    assert plain_volume({"Driver": "local", "Options": {"size": "1G"}})
    assert not plain_volume({"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/"}})
    assert not plain_volume({"Driver": "nfs-plugin", "Options": {}})


def test_the_gpus_the_hub_hands_out_pass_as_it_sends_them() -> None:
    for ids in (("0",), ("1", "3"), ("GPU-5f1c0b7e-2a4d-4c1e-9b0a-1d2e3f4a5b6c",)):
        body, volume = hub_create_body(ids)
        assert body["HostConfig"]["DeviceRequests"] == [
            {"Driver": "nvidia", "Count": 0, "DeviceIDs": list(ids), "Capabilities": [["gpu"]], "Options": {}}
        ]
        assert create(body).plain_volumes == (volume,)


GPU = {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0"], "Capabilities": [["gpu"]], "Options": {}}


@pytest.mark.parametrize(
    "request_",
    [
        {**GPU, "Count": -1, "DeviceIDs": None},  # docker run --gpus all
        {**GPU, "Count": 1, "DeviceIDs": []},
        {**GPU, "DeviceIDs": []},
        {**GPU, "DeviceIDs": ["all"]},
        {**GPU, "DeviceIDs": ["0,1"]},
        {**GPU, "DeviceIDs": [0]},
        {**GPU, "Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=all"]},
        {**GPU, "Driver": ""},
        {**GPU, "Capabilities": [["gpu", "compute", "utility", "display"]]},
        {**GPU, "Capabilities": [["gpu"], ["compute"]]},
        {**GPU, "Options": {"com.example.mount": "/"}},
        {**GPU, "Extra": True},
        "nvidia",
    ],
)
def test_device_requests_of_another_shape_are_refused(request_: Any) -> None:
    with pytest.raises(Refused):
        create(modified({"DeviceRequests": [request_]}))
    with pytest.raises(Refused):
        create(modified({"DeviceRequests": [GPU, request_]}))


def test_docker_events_are_narrowed_to_the_hubs_objects() -> None:
    """Security fix: the event stream showed every container's labels and name and every exec's command line."""
    sent = '{"type": ["container"], "event": ["die"], "label": ["hub.prefix=hub"]}'  # hub/docker_events.py
    decision = decide("GET", "/v1.41/events", {"filters": [sent], "since": ["5"]})
    assert decision.query is not None and dict(decision.query)["since"] == "5"
    assert json.loads(dict(decision.query)["filters"]) == {
        "type": {"container": True},
        "event": {"die": True},
        "label": {"hub.prefix=hub": True, "hub.managed=true": True},
    }
    for given in ({}, {"filters": [""]}, {"filters": ['{"label": {"hub.managed=false": true}}']}):
        query = decide("GET", "/events", given).query
        assert query is not None and "hub.managed=true" in json.loads(dict(query)["filters"])["label"]
    for refused in (["[]"], ["{"], ['{"label": "x"}'], ['{"label": [1]}'], ["{}", "{}"]):
        with pytest.raises(Refused):
            decide("GET", "/events", {"filters": refused})
    with pytest.raises(Refused):
        decide("GET", "/events", {"type": ["container"]})


def test_network_joins_name_one_container_of_a_hub_network() -> None:
    """Security fix: connect and disconnect passed for any container and any network."""
    body = json.dumps({"Container": "traefik", "EndpointConfig": {}}).encode()  # as the Docker SDK sends it
    join = decide("POST", "/v1.41/networks/hub-net-alice/connect", {}, body)
    assert join.managed == ("networks", "hub-net-alice")
    assert join.join is not None and (join.join.container, join.join.connect) == ("traefik", True)
    assert json.loads(join.join.body("f" * 64)) == {"Container": "f" * 64, "EndpointConfig": {}}
    leave = decide("POST", "/v1.41/networks/n/disconnect", {}, b'{"Container": "traefik", "Force": true}')
    assert leave.join is not None and leave.join.force and leave.managed == ("networks", "n")
    assert json.loads(leave.join.body("abc")) == {"Container": "abc", "Force": True}
    for path, refused in [
        ("connect", {"Container": "traefik", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.213.0.2"}}}),
        ("connect", {"Container": "traefik", "EndpointConfig": {"Aliases": ["hub-internal"]}}),
        ("connect", {"EndpointConfig": {}}),
        ("connect", {"Container": ".."}),
        ("connect", {"Container": "a/../../b"}),
        ("connect", {"Container": "traefik", "Force": True}),
        ("disconnect", {"Container": ["a", "b"]}),
        ("disconnect", {"Container": "traefik", "Extra": 1}),
    ]:
        with pytest.raises(Refused):
            decide("POST", f"/v1.41/networks/n/{path}", {}, json.dumps(refused).encode())


class FakeDocker:
    """Answers the proxy's look-ups from a table of records (path: status, JSON) and nothing else."""

    def __init__(self, records: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.records = records
        self.asked: list[str] = []

    def get(self, url: str) -> Any:
        path = url.removeprefix("http://docker")
        self.asked.append(path)
        status, data = self.records.get(path, (404, {"message": f"no such object: {path}"}))

        class Answer:
            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            async def json(self, content_type: object = None) -> dict[str, Any]:
                return data

        answer = Answer()
        answer.status = status  # type: ignore[attr-defined]
        return answer


HUB = {"hub.managed": "true"}


async def test_a_service_call_goes_to_the_id_of_the_service_that_was_checked() -> None:
    """Security fix: a service's record has ``ID`` (not ``Id``), so calls went on under the caller's name, which
    may name another service by the time Docker reads it."""
    from hub.socket_proxy import verify

    docker_ = FakeDocker({"/services/web": (200, {"ID": "k3x9service0id", "Spec": {"Name": "web", "Labels": HUB}})})
    for method, path, rest in [("DELETE", "/v1.41/services/web", ""), ("GET", "/v1.41/services/web/logs", "/logs")]:
        decision = decide(method, path, {})
        forwarded, body, answered = await verify(docker_, path, decision)  # type: ignore[arg-type]
        assert (forwarded, body, answered) == (f"/v1.41/services/k3x9service0id{rest}", None, None)
    inspected = decide("GET", "/v1.41/services/web", {})
    assert inspected.managed == ("services", "web")  # inspecting a service is for the hub's own (its environment)
    other = FakeDocker({"/services/db": (200, {"ID": "other", "Spec": {"Name": "db", "Labels": {}}})})
    with pytest.raises(Refused, match="not a service this hub made"):
        await verify(other, "/v1.41/services/db", decide("GET", "/v1.41/services/db", {}))  # type: ignore[arg-type]
    config = FakeDocker({"/configs/hub-pin-x": (200, {"ID": "cfg0id", "Spec": {"Name": "hub-pin-x", "Labels": HUB}})})
    removed = await verify(config, "/v1.41/configs/hub-pin-x", decide("DELETE", "/v1.41/configs/hub-pin-x", {}))  # type: ignore[arg-type]
    assert removed == ("/v1.41/configs/cfg0id", None, None)  # Swarm configs spell it ID too
    nameless = FakeDocker({"/services/web": (200, {"Spec": {"Labels": HUB}})})
    with pytest.raises(Refused, match="has no ID"):
        await verify(nameless, "/v1.41/services/web", decide("DELETE", "/v1.41/services/web", {}))  # type: ignore[arg-type]


async def test_a_join_checks_the_network_and_the_container_and_names_both_by_id() -> None:
    from hub.socket_proxy import verify

    network = (200, {"Id": "n" * 64, "Name": "hub-net-alice", "Labels": HUB})
    traefik = (200, {"Id": "t" * 64, "Name": "/proj-traefik-1", "Config": {"Labels": {}}})
    server = (200, {"Id": "s" * 64, "Name": "/hub-user-alice", "Config": {"Labels": HUB}})
    docker_ = FakeDocker(
        {
            "/networks/hub-net-alice": network,
            "/networks/bridge": (200, {"Id": "b" * 64, "Name": "bridge", "Labels": {}}),
            "/containers/proj-traefik-1/json": traefik,
            "/containers/hub-user-alice/json": server,
            "/containers/postgres/json": (200, {"Id": "p" * 64, "Name": "/postgres", "Config": {"Labels": {}}}),
        }
    )

    async def join(network: str, container: str, joinable: frozenset[str] = frozenset()) -> tuple[str, Any]:
        body = json.dumps({"Container": container, "EndpointConfig": {}}).encode()
        path = f"/v1.41/networks/{network}/connect"
        forwarded, new_body, answered = await verify(docker_, path, decide("POST", path, {}, body), joinable)  # type: ignore[arg-type]
        assert answered is None
        return forwarded, json.loads(new_body or b"null")

    assert await join("hub-net-alice", "hub-user-alice") == (
        f"/v1.41/networks/{'n' * 64}/connect",
        {"Container": "s" * 64, "EndpointConfig": {}},
    )
    assert (await join("hub-net-alice", "proj-traefik-1", frozenset({"proj-traefik-1"})))[1]["Container"] == "t" * 64
    with pytest.raises(Refused, match="connect-container"):
        await join("hub-net-alice", "postgres")  # another program's container: not onto the users' networks
    with pytest.raises(Refused, match="not a network this hub made"):
        await join("bridge", "hub-user-alice")
    missing = decide("POST", "/v1.41/networks/hub-net-alice/disconnect", {}, b'{"Container": "gone", "Force": true}')
    _, _, answered = await verify(docker_, "/v1.41/networks/hub-net-alice/disconnect", missing)  # type: ignore[arg-type]
    assert answered is not None and answered.status == 404


def test_the_operator_names_the_containers_the_hub_may_join_on_the_command_line() -> None:
    from hub.cli import parser

    args = parser().parse_args(["socket-proxy", "--connect-container", "proj-traefik-1", "--connect-container", "hub"])
    assert args.connect_container == ["proj-traefik-1", "hub"]
    assert parser().parse_args(["socket-proxy"]).connect_container == []


async def test_a_service_joins_only_the_hubs_networks_and_mounts_only_the_hubs_driver_volumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Security fixes: a service (or container) could join any network, such as another program's internal one;
    and a mount with the operator's volume driver named any existing volume (Docker then ignores the driver's
    options), such as another program's folder-backed one."""
    from hub.docker_policy import Decision
    from hub.socket_proxy import verify

    theirs = {"Name": "their-net", "Labels": {}}
    docker_ = FakeDocker(
        {
            "/networks/hub-users": (200, {"Name": "hub-users", "Labels": HUB}),
            "/networks/their-net": (200, theirs),
            "/volumes/hub-vol-alice": (200, {"Name": "hub-vol-alice", "Labels": HUB, "Options": {"type": "nfs"}}),
            "/volumes/app-data": (200, {"Name": "app-data", "Labels": {}, "Options": {"o": "bind"}}),
        }
    )
    path = "/v1.41/services/create"
    assert await verify(docker_, path, Decision("t", networks=("hub-users",))) == (path, None, None)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="--network"):
        await verify(docker_, path, Decision("t", networks=("their-net",)))  # type: ignore[arg-type]
    told = await verify(
        docker_, path, Decision("t", networks=("their-net",)), allowed_networks=frozenset({"their-net"})
    )  # type: ignore[arg-type]
    assert told == (path, None, None)  # as compose's and the stack's proxies are told the users' network
    made = Decision("t", labelled_volumes=("hub-vol-alice", "hub-vol-new"))  # the new one Docker makes
    assert await verify(docker_, path, made) == (path, None, None)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="not one this hub made"):
        await verify(docker_, path, Decision("t", labelled_volumes=("app-data",)))  # type: ignore[arg-type]
