"""What the socket proxy passes on of Docker's answers: the hub's own objects whole, other programs' secrets
(environments, volume driver options) never."""

from __future__ import annotations

from typing import Any

import pytest

from hub.docker_answers import NARROWERS, narrow
from hub.docker_policy import decide

HUB = {"hub.managed": "true", "hub.username": "alice"}
SECRET = "POSTGRES_PASSWORD=hunter2"


def service(labels: dict[str, str]) -> dict[str, Any]:
    container = {"Image": "x", "Env": [SECRET], "Labels": labels}
    return {"ID": "s1", "Spec": {"Name": "s", "Labels": labels, "TaskTemplate": {"ContainerSpec": container}}}


def task(labels: dict[str, str]) -> dict[str, Any]:
    return {"ID": "t1", "ServiceID": "s1", "Labels": {}, "Spec": {"ContainerSpec": {"Env": [SECRET], "Labels": labels}}}


def test_every_narrowed_route_names_a_known_kind() -> None:
    assert decide("GET", "/v1.41/services", {}).answer == "services"
    assert decide("GET", "/v1.41/tasks", {}).answer == "tasks"
    assert decide("GET", "/v1.41/containers/json", {}).answer == "containers"
    assert decide("GET", "/v1.41/containers/traefik/json", {}).answer == "container"
    assert decide("GET", "/v1.41/volumes/v", {}).answer == "volume"
    assert decide("GET", "/v1.41/volumes", {}).answer == "volumes"
    assert decide("GET", "/v1.41/configs", {}).answer == "configs"
    assert {"services", "tasks", "configs", "containers", "container", "volume", "volumes"} == set(NARROWERS)


def test_lists_of_services_and_tasks_hold_only_the_hubs() -> None:
    """Security fix: GET /services and GET /tasks showed every service's environment, other apps' secrets."""
    assert narrow("services", [service(HUB), service({"com.example": "db"}), service({})]) == [service(HUB)]
    assert narrow("tasks", [task(HUB), task({}), {"ID": "odd"}]) == [task(HUB)]
    with pytest.raises(ValueError):
        narrow("services", {"message": "not a list"})
    pin = {"ID": "c1", "Spec": {"Name": "hub-pin-x", "Labels": HUB, "Data": "bm9kZQ=="}}
    other = {"ID": "c2", "Spec": {"Name": "db-password", "Labels": {}, "Data": "aHVudGVyMg=="}}
    assert narrow("configs", [pin, other]) == [pin]  # Swarm configs: another program's may hold a password


def test_other_containers_are_listed_not_and_inspected_without_their_settings() -> None:
    """Security fix: GET /containers/{id}/json showed any container's environment."""
    summaries = [{"Id": "a", "Labels": HUB}, {"Id": "b", "Labels": {"traefik.enable": "true"}}, {"Id": "c"}]
    assert narrow("containers", summaries) == [summaries[0]]
    ours = {"Id": "a", "Name": "/hub-user-alice", "Config": {"Env": ["JUPYTERHUB_API_TOKEN=x"], "Labels": HUB}}
    assert narrow("container", ours) == ours
    traefik = {
        "Id": "t" * 64,
        "Name": "/proj-traefik-1",
        "Created": "2026-11-26T10:00:00Z",
        "Image": "sha256:abc",
        "State": {"Status": "running", "Running": True, "Pid": 4242},
        "Config": {"Env": [SECRET], "Cmd": ["--pass=x"], "Labels": {"basicauth.users": "admin:$apr1$"}, "Tty": False},
        "HostConfig": {"Binds": ["/etc/secrets:/s"]},
        "NetworkSettings": {"Networks": {"hub-net-alice": {"NetworkID": "n", "IPAddress": "10.213.0.3"}}},
    }
    seen = narrow("container", traefik)
    assert seen == {
        "Id": "t" * 64,
        "Name": "/proj-traefik-1",
        "Created": "2026-11-26T10:00:00Z",
        "Image": "sha256:abc",
        "State": {"Status": "running", "Running": True},
        "Config": {"Tty": False},
        "NetworkSettings": {"Networks": {"hub-net-alice": {"NetworkID": "n", "IPAddress": "10.213.0.3"}}},
    }
    assert "hunter2" not in repr(seen) and "apr1" not in repr(seen)


def test_other_volumes_keep_their_labels_but_not_their_driver_options() -> None:
    cifs = {
        "Name": "share",
        "Driver": "local",
        "Labels": {"owner": "accounting"},
        "Options": {"type": "cifs", "o": "username=x,password=hunter2", "device": "//nas/share"},
        "Status": {"x": 1},
    }
    ours = {"Name": "hub-home-alice", "Driver": "local", "Labels": HUB, "Options": {"size": "1G"}}
    assert narrow("volume", cifs) == {
        "Name": "share",
        "Driver": "local",
        "Labels": {"owner": "accounting"},
        "Options": {},
    }
    assert narrow("volume", ours) == ours
    listed = narrow("volumes", {"Volumes": [cifs, ours], "Warnings": None})
    assert listed["Volumes"][1] == ours and "hunter2" not in repr(listed)
