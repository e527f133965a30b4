"""Log levels of the dependency monitor: a dependency still starting is no alarm, losing one is."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub import dependencies
from hub.dependencies import DependencyMonitor
from hub.errors import ServiceUnavailable


class Reachable:
    """Stands in for the spawner and the proxy: only their ping is asked."""

    def __init__(self) -> None:
        self.up = False
        self.prepared = 0

    async def ping(self) -> bool:
        return self.up

    async def prepare(self) -> None:
        self.prepared += 1


def watched(*, docker_up: bool = False, traefik_up: bool = False) -> tuple[DependencyMonitor, Reachable, Reachable]:
    """A monitor (checks every 5 s) over a stand-in Docker and Traefik, each up or not."""
    docker, traefik = Reachable(), Reachable()
    docker.up, traefik.up = docker_up, traefik_up
    return DependencyMonitor(docker, traefik, interval=5), docker, traefik  # type: ignore[arg-type]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_traefik_still_starting_is_information_and_losing_it_later_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor, docker, traefik = watched(docker_up=True)
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
    monitor, docker, traefik = watched(docker_up=True)
    await monitor.check()
    assert errors(caplog) == []
    monkeypatch.setattr(dependencies, "STARTUP_GRACE_SECONDS", 0.0)
    await monitor.check()
    await monitor.check()
    assert len(errors(caplog)) == 1 and "has not been reachable since the hub started" in errors(caplog)[0]


async def test_a_start_asks_docker_again_instead_of_trusting_an_old_away() -> None:
    monitor, docker, traefik = watched(traefik_up=True)
    assert await monitor.check() is False  # the hub came up before Docker (or its socket proxy)
    with pytest.raises(ServiceUnavailable, match="cannot reach Docker"):
        await monitor.require_docker()
    docker.up = True  # Docker arrives between two of the monitor's checks
    await monitor.require_docker()
    assert monitor.docker_ok and monitor.notice is None


async def test_starts_asking_at_the_same_moment_share_one_question() -> None:
    monitor, docker, _ = watched()
    asked = 0

    async def ping() -> bool:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0.05)
        return False

    docker.ping = ping  # type: ignore[method-assign]
    await monitor.check()
    refused = await asyncio.gather(*(monitor.require_docker() for _ in range(30)), return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in refused)
    assert asked == 2  # the monitor's check, then one question for thirty starts at once
    with pytest.raises(ServiceUnavailable):
        await monitor.require_docker()
    assert asked == 3


async def test_a_neighbour_still_starting_is_asked_every_second_not_with_growing_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor, docker, traefik = watched(docker_up=True)
    await monitor.check()  # Traefik has not answered yet

    def pauses(count: int) -> list[float]:
        pause, failing, seen = 1.0, True, []
        for _ in range(count):
            pause, failing = monitor.next_pause(pause, False, failing)
            seen.append(pause)
        return seen

    assert pauses(4) == [1.0, 1.0, 1.0, 1.0]
    monkeypatch.setattr(dependencies, "STARTUP_GRACE_SECONDS", 0.0)  # Traefik is late now: growing pauses
    assert pauses(4) == [2.0, 4.0, 8.0, 16.0]
    assert monitor.next_pause(16.0, True, True) == (5, False)


async def test_a_failed_rewrite_of_the_hub_routes_is_tried_again_at_the_next_check() -> None:
    monitor, docker, traefik = watched(docker_up=True)
    assert await monitor.check() is False
    traefik.up = True
    failures = [OSError("disk full")]

    async def prepare() -> None:
        traefik.prepared += 1
        if failures:
            raise failures.pop()

    traefik.prepare = prepare  # type: ignore[method-assign]
    with pytest.raises(OSError):
        await monitor.check()
    assert await monitor.check() is True
    assert traefik.prepared == 2 and monitor.traefik_ok


async def test_an_answer_overtaken_by_a_newer_one_is_dropped() -> None:
    monitor, docker, traefik = watched(traefik_up=True)
    await monitor.check()
    slow_traefik = asyncio.Event()

    async def slow_ping() -> bool:
        await slow_traefik.wait()
        return True

    traefik.ping = slow_ping  # type: ignore[method-assign]
    checking = asyncio.ensure_future(monitor.check())  # asks Docker (away), then waits for Traefik
    await asyncio.sleep(0.01)
    docker.up = True
    await monitor.require_docker()  # a start's newer question: Docker is back
    slow_traefik.set()
    assert await checking is True
    assert monitor.docker_ok and monitor.notice is None


async def test_a_question_that_fails_or_hangs_is_a_clear_refusal_for_everyone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor, docker, traefik = watched()
    await monitor.check()

    async def broken() -> bool:
        raise RuntimeError("the executor is shut down")

    docker.ping = broken  # type: ignore[method-assign]
    refused = await asyncio.gather(*(monitor.require_docker() for _ in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in refused)
    hang = asyncio.Event()

    async def hanging() -> bool:
        await hang.wait()
        return True

    docker.ping = hanging  # type: ignore[method-assign]
    monkeypatch.setattr(dependencies, "RECHECK_TIMEOUT", 0.05)
    waiting = asyncio.ensure_future(monitor.require_docker())
    await asyncio.sleep(0)
    waiting.cancel()  # the first start gives up: the question goes on for the others
    with pytest.raises(ServiceUnavailable):
        await monitor.require_docker()  # a Docker that hangs is away, after RECHECK_TIMEOUT
    hang.set()
    await asyncio.sleep(0.01)
    await monitor.require_docker()  # the question that hung came back: Docker is there
    assert monitor.docker_ok
