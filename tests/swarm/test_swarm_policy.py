"""The socket proxy's rule for services: exactly what the Swarm spawner sends, nothing that reaches a host."""

from __future__ import annotations

import json
import re
from typing import Any

import docker
import pytest

from hub.config import ImageSpec, SpawnerSection
from hub.docker_policy import Refused, decide
from hub.spawner import SpawnRequest
from hub.swarm_spawner import SwarmSpawner


class Answer:
    def raise_for_status(self) -> None:
        pass

    def json(self) -> dict[str, str]:
        return {"ID": "made"}


def spawner_body(monkeypatch: pytest.MonkeyPatch, node: str | None = None, **more: Any) -> dict[str, Any]:
    """The body hub/swarm_spawner.py sends to create a service, captured before it leaves the SDK."""
    settings = SpawnerSection.model_validate({"backend": "swarm", "prefix": "hub", "network": "hub-users", **more})
    spawner = SwarmSpawner(settings)
    spawner._client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    sent: list[str] = []

    def post(url: str, **kwargs: Any) -> Answer:
        sent.append(kwargs["data"])
        return Answer()

    monkeypatch.setattr(spawner._client.api, "_post", post)
    image = ImageSpec.model_validate({"name": "lab", "image": "lab:1", "mem_limit": "1g", "cpu_limit": 1})
    request = SpawnRequest("alice", "alice", image, "/user/alice/", "secret")
    labels = {"hub.managed": "true", "hub.prefix": "hub"}
    spawner._create_service(request, "hub-user-alice", "hub-vol-alice", labels, volume_labels=labels, node=node)
    return json.loads(sent[0])


def allowed(body: dict[str, Any]) -> Any:
    return decide("POST", "/v1.41/services/create", {}, json.dumps(body).encode())


def test_the_spawners_service_is_allowed_with_its_volume_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    decision = allowed(spawner_body(monkeypatch))
    assert decision.plain_volumes == ("hub-vol-alice",)
    assert decision.networks == ("hub-users",)  # the proxy checks it is the hub's, or one named with --network


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b["TaskTemplate"]["ContainerSpec"]["Mounts"][0].update(Type="bind", Source="/"), "named volumes"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(CapabilityAdd=["SYS_ADMIN"]), "CapabilityAdd"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(capabilityadd=["ALL"]), "capabilityadd"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(Sysctls={"kernel.x": "1"}), "Sysctls"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(Privileges={"SELinuxContext": {}}), None),
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "host"}), "network 'host'"),
        # the host network's ID, or the start of it: Docker resolves either to the host's network
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "593c0d939100"}), "network '593c0d939100'"),
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "593c"}), "network '593c'"),
        # the start of a Swarm network's ID (letters and digits), e.g. of the Swarm's own host network
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "qx7"}), "network 'qx7'"),
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "qx7k2m9p0a1b2c3d4e5f6g7h8"}), "network 'qx7k"),
        (lambda b: b["TaskTemplate"]["Networks"].append({"Target": "QX7"}), "network 'QX7'"),
        # an alias on a network: a name another program's services use, answered by the hub's service
        (lambda b: b["TaskTemplate"]["Networks"][0].update(Aliases=["db"]), "aliases"),
        (lambda b: b["EndpointSpec"].update(Ports=[{"TargetPort": 22, "PublishedPort": 2222}]), "Ports"),
        (lambda b: b.update(Labels={}), "hub.managed=true"),
        (lambda b: b.update(Mode={"Global": {}}), "one replica"),
        (lambda b: b["TaskTemplate"].update(Placement={"Constraints": ["node.role==manager"]}), "Placement"),
        (
            lambda b: b["TaskTemplate"]["ContainerSpec"]["Mounts"][0].update(
                VolumeOptions={"DriverConfig": {"Name": "local", "Options": {"o": "bind", "device": "/"}}}
            ),
            "driver configuration",
        ),
        (lambda b: b["TaskTemplate"]["Resources"].update(Reservations={"GenericResources": [{}]}), "Generic"),
    ],
)
def test_anything_that_reaches_a_host_is_refused(
    monkeypatch: pytest.MonkeyPatch, change: Any, words: str | None
) -> None:
    body = spawner_body(monkeypatch)
    change(body)
    with pytest.raises(Refused, match=re.escape(words) if words else None) as refused:
        allowed(body)
    assert str(refused.value)


def test_service_calls_reach_only_the_hubs_services() -> None:
    assert decide("DELETE", "/v1.41/services/abc", {}).managed == ("services", "abc")
    assert decide("GET", "/v1.41/services/abc/logs", {"tail": ["20"]}).managed == ("services", "abc")
    assert decide("GET", "/v1.41/tasks", {}).route
    with pytest.raises(Refused):
        decide("POST", "/v1.41/services/abc/update", {}, b"{}")
    with pytest.raises(Refused):
        decide("POST", "/v1.41/swarm/leave", {})


NODE = "x3k9q0w2e4r6t8y1u3i5o7p9a"  # a Swarm node ID: 25 lower-case letters and digits
NFS = {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4", "device": ":/export/hub/{volume}"}


def test_the_pin_to_the_node_of_the_users_files_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = spawner_body(monkeypatch, node=NODE)
    assert body["TaskTemplate"]["Placement"] == {"Constraints": [f"node.id=={NODE}"]}
    assert allowed(body).plain_volumes == ("hub-vol-alice",)


@pytest.mark.parametrize(
    "placement",
    [
        {"Constraints": ["node.role==manager"]},
        {"Constraints": ["node.role!=worker"]},
        {"Constraints": ["node.labels.gpu==yes"]},
        {"Constraints": ["engine.labels.operatingsystem==ubuntu"]},
        {"Constraints": ["node.hostname==manager-1"]},
        {"Constraints": [f"node.id!={NODE}"]},
        {"Constraints": [f"node.id == {NODE}"]},
        {"Constraints": [f"node.id=={NODE}", "node.role==manager"]},
        {"Constraints": [f"node.id=={NODE[:12]}"]},  # a prefix: not the exact node the hub recorded
        {"Constraints": [f"node.id=={NODE}\nnode.role==manager"]},
        {"Constraints": [f"node.id=={NODE}\n"]},
        {"Constraints": [f"node.id=={NODE}"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.role"}}]},
        {"Constraints": [f"node.id=={NODE}"], "Platforms": [{"OS": "linux"}]},
        {"Constraints": [f"node.id=={NODE}"], "MaxReplicas": 5},
        {"constraints": ["node.role==manager"]},
    ],
)
def test_any_other_placement_is_refused(monkeypatch: pytest.MonkeyPatch, placement: dict[str, Any]) -> None:
    body = spawner_body(monkeypatch)
    body["TaskTemplate"]["Placement"] = placement
    with pytest.raises(Refused, match="Placement"):
        allowed(body)


def test_a_size_limit_makes_a_plain_volume_on_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    body = spawner_body(monkeypatch, volume_size="10g")
    options = body["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"]
    assert options["DriverConfig"] == {"Name": "local", "Options": {"size": "10g"}}
    assert options["Labels"]["hub.managed"] == "true"
    assert allowed(body).plain_volumes == ("hub-vol-alice",)


def test_the_operators_volume_driver_passes_only_when_the_proxy_was_given_it(monkeypatch: pytest.MonkeyPatch) -> None:
    body = spawner_body(monkeypatch, volume_driver="local", volume_driver_options=NFS)
    with pytest.raises(Refused, match="driver configuration"):
        allowed(body)  # the proxy was not told: refused
    monkeypatch.setenv("HUB_SPAWNER__VOLUME_DRIVER", "local")
    monkeypatch.setenv("HUB_SPAWNER__VOLUME_DRIVER_OPTIONS", json.dumps(NFS))
    assert allowed(body).plain_volumes == ()  # made by the operator's driver on the node: not a plain volume
    assert allowed(body).labelled_volumes == ("hub-vol-alice",)  # but if it exists, it must be the hub's
    mount = body["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert mount["VolumeOptions"]["DriverConfig"]["Options"]["device"] == ":/export/hub/hub-vol-alice"
    for options in (
        {**NFS, "device": "/{volume}/../../"},
        {"type": "none", "o": "bind", "device": "/{volume}"},
        {**NFS, "extra": "{volume}"},
    ):
        changed = spawner_body(monkeypatch, volume_driver="local", volume_driver_options=options)
        with pytest.raises(Refused, match="driver configuration"):
            allowed(changed)
    mount["VolumeOptions"]["DriverConfig"]["Options"]["device"] = ":/export/hub/hub-vol-bob"  # another's folder
    with pytest.raises(Refused, match="driver configuration"):
        allowed(body)


def test_a_local_volume_driver_needs_a_folder_per_volume() -> None:
    with pytest.raises(ValueError, match="same folder"):
        SpawnerSection(backend="swarm", volume_driver="local", volume_driver_options={**NFS, "device": ":/export"})
    with pytest.raises(ValueError, match="only with spawner.backend swarm"):
        SpawnerSection(volume_driver="local", volume_driver_options=NFS)


def prepull_body(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The pre-pull job hub/swarm_prepull.py sends, captured before it leaves the SDK."""
    from hub.swarm_prepull import NodePull

    settings = SpawnerSection.model_validate({"backend": "swarm", "prefix": "hub"})
    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    sent: list[str] = []

    def post(url: str, **kwargs: Any) -> Answer:
        sent.append(kwargs["data"])
        return Answer()

    monkeypatch.setattr(client.api, "_post", post)

    async def call(func: Any, *args: Any) -> Any:
        return func(*args)

    image = ImageSpec.model_validate({"name": "lab", "image": "registry.example:5000/lab:1"})
    NodePull(settings, lambda: client, call, {})._create(image, "hub-prepull-0123456789ab")
    return json.loads(sent[0])


def test_the_pre_pull_job_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = prepull_body(monkeypatch)
    assert body["Mode"] == {"GlobalJob": {}}
    assert allowed(body).route == "fetch an image onto every node"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(Command=["sh", "-c", "reboot"]), "runs only"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(User="0"), "runs only"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(CapabilityDrop=[]), "drops every capability"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(CapabilityAdd=["SYS_ADMIN"]), "CapabilityAdd"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(Mounts=[{"Type": "bind", "Source": "/"}]), "Mounts"),
        (lambda b: b["TaskTemplate"]["ContainerSpec"].update(Args=["x"]), "Args"),
        (lambda b: b["TaskTemplate"].update(Networks=[{"Target": "host"}]), "Networks"),
        (lambda b: b["TaskTemplate"].update(Placement={"Constraints": [f"node.id=={NODE}"]}), "Placement"),
        (lambda b: b["TaskTemplate"].update(RestartPolicy={"Condition": "any"}), "not restarted"),
        (lambda b: b.update(EndpointSpec={"Ports": [{"TargetPort": 22, "PublishedPort": 2222}]}), "endpoint"),
        (lambda b: b.update(Mode={"GlobalJob": {}, "Global": {}}), "GlobalJob"),
        (lambda b: b.update(Mode={"ReplicatedJob": {"MaxConcurrent": 100}}), "one replica"),
        (lambda b: b.update(Name="hub-user-alice"), "prepull"),
        (lambda b: b["Labels"].pop("hub.prepull"), "hub.prepull=true"),
    ],
)
def test_the_pre_pull_job_is_exactly_that(monkeypatch: pytest.MonkeyPatch, change: Any, words: str) -> None:
    body = prepull_body(monkeypatch)
    change(body)
    with pytest.raises(Refused, match=re.escape(words)):
        allowed(body)


def config(name: str = "hub-pin-0123456789abcdef01234567", data: bytes = NODE.encode(), **labels: str) -> bytes:
    import base64

    spec = {"Name": name, "Data": base64.b64encode(data).decode(), "Labels": {"hub.managed": "true", **labels}}
    return json.dumps(spec).encode()


def test_the_record_of_a_volumes_node_is_a_node_id_only() -> None:
    assert decide("POST", "/v1.41/configs/create", {}, config()).route == "record the node of a volume"
    assert decide("GET", "/v1.41/configs", {"filters": ['{"label": ["hub.managed=true"]}']}).route
    assert decide("DELETE", "/v1.41/configs/abc", {}).managed == ("configs", "abc")
    refused = [
        config(data=b"#!/bin/sh\nrm -rf /"),
        config(data=NODE.encode() + b"\n"),
        config(name="ssh-keys"),
        json.dumps({"Name": "hub-pin-0123456789abcdef01234567", "Data": "eDNr"}).encode(),  # no label
        json.dumps(
            {
                **json.loads(config()),
                "Templating": {"Name": "golang"},
            }
        ).encode(),
    ]
    for body in refused:
        with pytest.raises(Refused):
            decide("POST", "/v1.41/configs/create", {}, body)
    with pytest.raises(Refused):
        decide("POST", "/v1.41/secrets/create", {}, config())
    with pytest.raises(Refused):
        decide("POST", "/v1.41/configs/abc/update", {}, config())
