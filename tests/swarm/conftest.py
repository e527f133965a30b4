"""A one-node Docker Swarm on the test daemon, made for these tests and left as it was found
(tests/fixtures/swarm.py: ``docker swarm init`` only when the daemon is in none, ``leave`` only when this run made it
and no other run's services are on it; only this run's services, configs and network are removed)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.fixtures.swarm import SwarmUnavailable, single_node_swarm


@pytest.fixture(scope="session")
def swarm(docker_client: docker.DockerClient, run_prefix: str) -> Iterator[str]:
    """The name of an overlay network for this run's servers, on a Swarm that exists for the session."""
    try:
        with single_node_swarm(docker_client, run_prefix) as network:
            yield network
    except SwarmUnavailable as exc:
        pytest.fail(str(exc))
