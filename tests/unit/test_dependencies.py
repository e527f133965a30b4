"""Log levels of the dependency monitor: a dependency still starting is no alarm, losing one is."""

from __future__ import annotations

import logging

import pytest

from hub import dependencies
from hub.dependencies import DependencyMonitor


class Reachable:
    """Stands in for the spawner and the proxy: only their ping is asked."""

    def __init__(self) -> None:
        self.up = False
        self.prepared = 0

    async def ping(self) -> bool:
        return self.up

    async def prepare(self) -> None:
        self.prepared += 1


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_traefik_still_starting_is_information_and_losing_it_later_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    docker, traefik = Reachable(), Reachable()
    docker.up = True
    monitor = DependencyMonitor(docker, traefik, interval=5)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="hub.dependencies")
    assert await monitor.check() is False
    assert await monitor.check() is False
    assert errors(caplog) == []
    assert "traefik is not reachable yet" in caplog.text
    traefik.up = True
    assert await monitor.check() is True
    assert "traefik is reachable" in caplog.text and traefik.prepared == 1
    traefik.up = False
    assert await monitor.check() is False
    assert errors(caplog) == ["traefik is unreachable; retrying with backoff"]


async def test_a_dependency_that_never_comes_is_an_error_after_the_grace(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker, traefik = Reachable(), Reachable()
    docker.up = True
    monitor = DependencyMonitor(docker, traefik, interval=5)  # type: ignore[arg-type]
    await monitor.check()
    assert errors(caplog) == []
    monkeypatch.setattr(dependencies, "STARTUP_GRACE_SECONDS", 0.0)
    await monitor.check()
    await monitor.check()
    assert len(errors(caplog)) == 1 and "has not been reachable since the hub started" in errors(caplog)[0]
