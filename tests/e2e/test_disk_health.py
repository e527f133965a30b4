"""/hub/health warns when the data disk is nearly full: in its JSON, in plain text, and once in the hub's log."""

from __future__ import annotations

import os
import secrets

import docker
import docker.errors
import pytest
import requests

from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.hub import HubFactory, HubProcess

pytestmark = [pytest.mark.docker, pytest.mark.traefik]


@pytest.fixture(scope="module")
def nearly_full(hub_factory: HubFactory) -> HubProcess:
    """A hub that finds its data disk nearly full: it wants 100% free (real disks never are)."""
    return hub_factory(hub={"disk_warn_free_percent": 100})


def test_health_warns_when_the_data_disk_is_nearly_full(nearly_full: HubProcess) -> None:
    health = requests.get(f"{nearly_full.url}/hub/health", timeout=30).json()
    assert health["status"] == "warning"
    assert health["docker"] is True and health["traefik"] is True
    (disk,) = health["disks"]
    assert disk["disk"] == "data" and disk["low"] is True
    data_dir = nearly_full.config_path.parent / "data"
    stat = os.statvfs(data_dir)
    assert disk["total_bytes"] == stat.f_blocks * stat.f_frsize
    assert abs(disk["free_bytes"] - stat.f_bavail * stat.f_frsize) < 2 * 10**9  # other tests write meanwhile
    warning = health["warnings"][0]
    assert warning.startswith("The data disk is nearly full: ")
    assert "less than 100% (hub.disk_warn_free_percent)" in warning
    assert str(data_dir) not in warning  # the public page does not tell where the hub keeps its data


def test_health_reads_as_text_too(nearly_full: HubProcess) -> None:
    response = requests.get(f"{nearly_full.url}/hub/health?format=text", timeout=30)
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "status: warning"
    assert "docker: reachable" in lines and "traefik: reachable" in lines
    assert any(line.startswith("data disk: ") and " free of " in line for line in lines)
    assert any(line.startswith("WARNING: The data disk is nearly full") for line in lines)
    assert requests.get(f"{nearly_full.url}/hub/health", headers={"Accept": "text/plain"}, timeout=30).text.startswith(
        "status: warning\n"
    )


def test_the_admin_reads_the_warning_in_the_log_once(nearly_full: HubProcess) -> None:
    for _ in range(3):
        requests.get(f"{nearly_full.url}/hub/health", timeout=30)
    data_dir = nearly_full.config_path.parent / "data"
    warned = [line for line in nearly_full.log().splitlines() if "The data disk is nearly full" in line]
    assert len(warned) == 1, warned
    assert "WARNING" in warned[0] and str(data_dir) in warned[0]  # the log names the folder


def test_health_warns_of_a_volume_size_limit_docker_cannot_enforce(
    hub_factory: HubFactory, run_prefix: str, docker_client: docker.DockerClient
) -> None:
    try:
        docker_client.volumes.create(
            f"{run_prefix}-probe-{secrets.token_hex(2)}", driver_opts={"size": "1m"}, labels={RUN_LABEL: run_prefix}
        ).remove()
    except docker.errors.APIError:
        pass
    else:
        pytest.skip("Docker on this host can limit volume sizes (xfs with pquota)")
    hub = hub_factory(spawner={"volume_size": "10g"})
    health = requests.get(f"{hub.url}/hub/health", timeout=30).json()
    assert health["status"] == "warning"
    assert any(
        warning.startswith("spawner.volume_size is 10g, but Docker here cannot limit volume sizes")
        for warning in health["warnings"]
    )
    assert "spawner.volume_size is 10g" in hub.log()  # and the admin reads it in the log
