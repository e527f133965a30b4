"""The Swarm backend's pure rules: resources, the newest task, and the words for "no node has room"."""

from __future__ import annotations

import re

import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.resources import Limits
from hub.spawner import SpawnRequest
from hub.swarm_spawner import service_name, service_resources
from hub.swarm_tasks import latest_task, task_exit_code, unschedulable_message


def request(limits: Limits | None = None, **image: object) -> SpawnRequest:
    spec = ImageSpec.model_validate({"name": "lab", "image": "lab:1", **image})
    return SpawnRequest("alice", "alice", spec, "/user/alice/", "secret", limits=limits)


def test_limits_are_also_reservations_so_swarm_places_by_room() -> None:
    resources = service_resources(request(mem_limit="512m", cpu_limit=1.5), pids_limit=100)
    assert resources["Limits"] == {"MemoryBytes": 512 * 1024**2, "NanoCPUs": 1_500_000_000, "Pids": 100}
    assert resources["Reservations"] == {"MemoryBytes": 512 * 1024**2, "NanoCPUs": 1_500_000_000}


def test_no_limits_reserve_nothing_but_processes_stay_limited() -> None:
    resources = service_resources(request(), pids_limit=2048)
    assert resources["Limits"] == {"Pids": 2048}
    assert not resources.get("Reservations")


def test_the_newest_task_is_the_one_that_counts() -> None:
    old = {"Version": {"Index": 10}, "Status": {"State": "failed", "ContainerStatus": {"ExitCode": 1}}}
    new = {"Version": {"Index": 12}, "Status": {"State": "running", "ContainerStatus": {"ExitCode": 0}}}
    assert latest_task([new, old]) is new and latest_task([]) is None
    assert task_exit_code(old) == 1 and task_exit_code(None) is None


def test_no_room_is_said_in_plain_words() -> None:
    assert "enough free memory or CPUs" in unschedulable_message("no suitable node (insufficient resources on 1 node)")
    assert "Please tell an admin" in unschedulable_message("no suitable node (scheduling constraints)")


def test_service_names_stay_dns_labels_and_apart() -> None:
    assert service_name("hub", "alice") == "hub-user-alice"
    long_user = names.user_slug("x" * 60)
    first = service_name("sixteen-chars-px", names.server_slug(long_user, "a" * 32))
    second = service_name("sixteen-chars-px", names.server_slug(long_user, "a" * 31 + "b"))
    assert len(first) <= 63 and len(second) <= 63 and first != second
    assert re.fullmatch(r"[a-z0-9](?:[-_]*[a-z0-9]+)*", first)  # what Swarm accepts as a service name


def test_the_backend_is_docker_unless_swarm_is_chosen() -> None:
    assert SpawnerSection().backend == "docker"
    assert SpawnerSection.model_validate({"backend": "swarm"}).backend == "swarm"
    with pytest.raises(ValueError, match="per_user is not available with spawner.backend swarm"):
        SpawnerSection.model_validate({"backend": "swarm", "isolation": "per_user"})
