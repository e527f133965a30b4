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


def spawner_body(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The body hub/swarm_spawner.py sends to create a service, captured before it leaves the SDK."""
    settings = SpawnerSection.model_validate({"backend": "swarm", "prefix": "hub", "network": "hub-users"})
    spawner = SwarmSpawner(settings)
    spawner._client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    sent: list[str] = []

    def post(url: str, **kwargs: Any) -> Answer:
        sent.append(kwargs["data"])
        return Answer()

    monkeypatch.setattr(spawner._client.api, "_post", post)
    image = ImageSpec.model_validate({"name": "lab", "image": "lab:1", "mem_limit": "1g", "cpu_limit": 1})
    request = SpawnRequest("alice", "alice", image, "/user/alice/", "secret")
    spawner._create_service(request, "hub-user-alice", "hub-vol-alice", {"hub.managed": "true", "hub.prefix": "hub"})
    return json.loads(sent[0])


def allowed(body: dict[str, Any]) -> Any:
    return decide("POST", "/v1.41/services/create", {}, json.dumps(body).encode())


def test_the_spawners_service_is_allowed_with_its_volume_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    decision = allowed(spawner_body(monkeypatch))
    assert decision.plain_volumes == ("hub-vol-alice",)


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
