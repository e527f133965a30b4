"""Every offered image is prepared in the background, so nobody waits for a build (over a fake Docker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.accounts import AccountService
from hub.config import ImageSpec, Settings, SpawnerSection
from hub.db import Sessionmaker
from hub.errors import ServiceUnavailable
from hub.image_prep import ImagePreparer
from hub.keys import IMAGE_PREP
from hub.servers import ServerManager
from tests.fakes import FakeImageProvider, FakeProxy, FakeSpawner
from tests.inprocess.conftest import TokenMaker

IMAGES = [
    {"name": "lab", "display_name": "Lab", "image": "fake/lab:1"},
    {"name": "course", "display_name": "Course", "image": "fake/course:1", "build": "course"},
    {"name": "stock", "display_name": "Stock", "image": "registry.example/stock:1"},
]


def specs(*rows: dict[str, Any]) -> list[ImageSpec]:
    return [ImageSpec(**row) for row in rows]


def preparer_for(
    images: list[ImageSpec], provider: FakeImageProvider, **spawner: Any
) -> tuple[ImagePreparer, FakeImageProvider]:
    settings = SpawnerSection(**spawner)
    provider.settings = settings
    return ImagePreparer(images, provider, settings), provider


def states(preparer: ImagePreparer) -> dict[str, str]:
    return {status.name: status.state for status in preparer.statuses()}


async def until(condition: Any, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


async def test_each_image_is_checked_and_the_missing_ones_built_or_pulled() -> None:
    preparer, provider = preparer_for(specs(*IMAGES), FakeImageProvider(here={"fake/lab:1"}))
    assert set(states(preparer).values()) == {"waiting"}
    await preparer.prepare_all()
    assert states(preparer) == {"lab": "ready", "course": "ready", "stock": "ready"}
    assert provider.works == ["fake/course:1", "registry.example/stock:1"]
    messages = {status.name: status.message for status in preparer.statuses()}
    assert messages["course"].startswith("built in") and messages["stock"].startswith("pulled in")


async def test_a_build_shows_its_latest_step_and_how_far_it_is() -> None:
    preparer, provider = preparer_for(specs(IMAGES[1]), FakeImageProvider(steps=4))
    provider.hold()
    task = asyncio.create_task(preparer.prepare_all())
    provider.allow(2)
    await until(lambda: "Step 2/4" in preparer.statuses()[0].message, "the second step")
    status = preparer.statuses()[0]
    assert (status.state, status.percent) == ("building", 25)
    assert status.message == "Building fake/course:1: Step 2/4 : RUN make part 2"
    provider.allow(2)
    await task
    assert states(preparer) == {"course": "ready"}


async def test_at_most_prepare_concurrency_images_are_built_at_once() -> None:
    rows = [{"name": f"img{number}", "image": f"fake/img{number}:1", "build": "x"} for number in range(5)]
    preparer, provider = preparer_for(specs(*rows), FakeImageProvider(steps=1), prepare_concurrency=2)
    provider.hold()
    task = asyncio.create_task(preparer.prepare_all())
    await until(lambda: provider.running == 2, "two builds")
    await asyncio.sleep(0.01)
    assert sorted(states(preparer).values()) == ["building", "building", "waiting", "waiting", "waiting"]
    provider.allow(5)
    await task
    assert provider.most_running == 2
    assert set(states(preparer).values()) == {"ready"}


async def test_two_offered_images_of_one_docker_image_are_built_once() -> None:
    rows = [IMAGES[1], {"name": "course-big", "image": "fake/course:1", "build": "course", "mem_limit": "4g"}]
    preparer, provider = preparer_for(specs(*rows), FakeImageProvider())
    await preparer.prepare_all()
    assert provider.works == ["fake/course:1"]
    assert states(preparer) == {"course": "ready", "course-big": "ready"}


@pytest.fixture
def building() -> FakeImageProvider:
    provider = FakeImageProvider()
    provider.hold()
    return provider


@pytest.fixture
async def manager_over(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, building: FakeImageProvider
) -> AsyncIterator[ServerManager]:
    manager = ServerManager(settings, sessions, FakeSpawner(images=building), FakeProxy())
    yield manager
    await manager.shutdown()


async def test_a_start_that_arrives_mid_build_joins_it_and_sees_its_progress(
    manager_over: ServerManager, building: FakeImageProvider
) -> None:
    course = specs(IMAGES[1])[0]
    preparer, _ = preparer_for([course], building)
    preparing = asyncio.create_task(preparer.prepare_all())
    building.allow(1)
    await until(lambda: "Step 1/3" in preparer.statuses()[0].message, "the first step")

    await manager_over.start("alice", course)
    progress = manager_over.progress("alice")
    assert progress is not None
    await until(lambda: any("under way" in event.message for event in progress.events), "the summary")
    building.allow(2)
    async for _ in progress.follow():
        pass
    seen = [event.message for event in progress.events]
    summary = next(message for message in seen if "under way" in message)
    assert summary.startswith("Building the image fake/course:1")
    assert "progress lines so far" in summary
    after = seen[seen.index(summary) + 1 :]
    assert [message for message in after if "Step" in message] == [
        "Building fake/course:1: Step 1/3 : RUN make part 1",  # where the build stood when the start joined
        "Building fake/course:1: Step 2/3 : RUN make part 2",
        "Building fake/course:1: Step 3/3 : RUN make part 3",
    ]
    assert progress.latest is not None and progress.latest.ready
    await preparing
    assert building.works == ["fake/course:1"]  # one build for both
    assert states(preparer) == {"course": "ready"}


async def test_a_start_that_stops_following_leaves_the_build_running_for_the_others(
    manager_over: ServerManager, building: FakeImageProvider
) -> None:
    course = specs(IMAGES[1])[0]
    await manager_over.start("alice", course)
    await until(lambda: building.work("fake/course:1") is not None, "the build")
    await manager_over.stop("alice")
    assert building.work("fake/course:1") is not None
    building.allow(3)
    await until(lambda: building.work("fake/course:1") is None, "the end of the build")
    assert "fake/course:1" in building.here


async def test_a_failure_is_shown_with_its_reason_and_a_later_start_tries_again(
    manager_over: ServerManager, building: FakeImageProvider
) -> None:
    images = specs(IMAGES[0], IMAGES[1])
    building.step_gate = None
    building.here.add("fake/lab:1")
    building.failing["fake/course:1"] = "pip could not reach the package index"
    preparer, _ = preparer_for(images, building)
    await preparer.prepare_all()
    status = {status.name: status for status in preparer.statuses()}
    assert status["lab"].state == "ready"
    assert status["course"].state == "failed"
    assert status["course"].message == (
        "The image fake/course:1 could not be built: pip could not reach the package index"
    )

    del building.failing["fake/course:1"]  # the admin fixed the network
    await manager_over.start("alice", images[1])
    progress = manager_over.progress("alice")
    assert progress is not None
    async for _ in progress.follow():
        pass
    assert progress.latest is not None and progress.latest.ready
    assert building.works == ["fake/course:1", "fake/course:1"]
    assert states(preparer) == {"lab": "ready", "course": "ready"}


async def test_with_preparation_off_nothing_is_built_until_someone_starts(
    manager_over: ServerManager, building: FakeImageProvider
) -> None:
    building.step_gate = None
    preparer, _ = preparer_for(specs(IMAGES[1]), building, prepare_images=False)
    await asyncio.wait_for(preparer.run(lambda: True), 1)  # returns at once
    assert states(preparer) == {"course": "unchecked"}
    assert building.works == []
    await manager_over.start("alice", preparer.images[0])
    progress = manager_over.progress("alice")
    assert progress is not None
    async for _ in progress.follow():
        pass
    assert building.works == ["fake/course:1"]
    assert states(preparer) == {"course": "ready"}


async def test_policy_never_only_checks_images_that_would_be_pulled() -> None:
    preparer, provider = preparer_for(specs(*IMAGES), FakeImageProvider(here={"fake/lab:1"}), pull_policy="never")
    await preparer.prepare_all()
    status = {status.name: status for status in preparer.statuses()}
    assert (status["lab"].state, status["course"].state, status["stock"].state) == ("ready", "ready", "missing")
    assert "spawner.pull_policy: never" in status["stock"].message
    assert provider.works == ["fake/course:1"]  # built, as a start would; never pulled


async def test_policy_always_pulls_again_in_the_background() -> None:
    here = {"fake/lab:1", "registry.example/stock:1"}
    preparer, provider = preparer_for(specs(IMAGES[0], IMAGES[2]), FakeImageProvider(here=here), pull_policy="always")
    await preparer.prepare_all()
    assert provider.works == ["fake/lab:1", "registry.example/stock:1"]
    assert set(states(preparer).values()) == {"ready"}


async def test_preparation_waits_for_docker_and_runs_again_when_it_comes_back() -> None:
    class FlakyProvider(FakeImageProvider):
        away = True

        async def present(self, image: ImageSpec) -> bool:
            if self.away:
                raise ServiceUnavailable("Docker is not reachable right now.", "docker: connection refused")
            return await super().present(image)

    provider = FlakyProvider(here={"fake/lab:1"})
    preparer, _ = preparer_for(specs(IMAGES[0]), provider, pull_policy="never")
    preparer.watch_seconds = preparer.retry_seconds = 0.01
    docker = {"up": False}
    runner = asyncio.create_task(preparer.run(lambda: docker["up"]))
    await asyncio.sleep(0.05)
    assert states(preparer) == {"lab": "waiting"}  # Docker away: nothing tried yet

    docker["up"] = True  # the dependency monitor says it answers, but the first look fails
    await until(lambda: preparer.statuses()[0].message.startswith("Waiting for Docker"), "the failed look")
    provider.away = False
    await until(lambda: states(preparer) == {"lab": "ready"}, "the retry")
    runner.cancel()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "data"},
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


@pytest.fixture
def spawner() -> FakeSpawner:
    """The whole app's spawner: the lab image is here, the course image is built, the stock one fails."""
    provider = FakeImageProvider(here={"fake/lab:1"}, failing={"registry.example/stock:1": "no route to host"})
    return FakeSpawner(images=provider)


async def test_the_api_shows_each_images_state_to_admins_only(app_client: TestClient, tokens_of: TokenMaker) -> None:
    preparer = app_client.server.app[IMAGE_PREP]
    await until(lambda: set(states(preparer).values()) <= {"ready", "failed"}, "the preparation at start")
    admin, alice = await tokens_of("admin"), await tokens_of("alice")

    response = await app_client.get("/hub/api/images", headers={"Authorization": f"token {admin}"})
    assert response.status == 200
    body = await response.json()
    assert body["prepare"] is True
    assert {image["name"]: image["state"] for image in body["images"]} == {
        "lab": "ready",
        "course": "ready",
        "stock": "failed",
    }
    stock = next(image for image in body["images"] if image["name"] == "stock")
    assert "no route to host" in stock["message"]
    assert (await app_client.get("/hub/api/images", headers={"Authorization": f"token {alice}"})).status == 403
    assert (await app_client.get("/hub/api/images")).status == 401


async def test_on_a_cluster_each_image_is_then_fetched_onto_every_node_with_progress() -> None:
    """spawner.backend swarm: the provider's ``spread`` (hub/swarm_prepull.py) runs once the image is on the hub's
    node; the admin panel shows its nodes' progress, then ready, or the nodes that could not fetch it."""
    from hub.errors import SpawnError

    preparer, provider = preparer_for(specs(IMAGES[0], IMAGES[2]), FakeImageProvider(here={"fake/lab:1"}))
    gate = asyncio.Event()

    async def spread(image: ImageSpec, progress: Any) -> None:
        progress(f"Fetching {image.image} onto every node: 1 of 3 nodes done", 33)
        await gate.wait()
        if image.image.startswith("registry.example"):
            raise SpawnError(f"The image {image.image} could not be fetched onto 1 of the cluster's 3 nodes (w2: x).")

    provider.spread = spread
    task = asyncio.create_task(preparer.prepare_all())
    await until(lambda: set(states(preparer).values()) == {"pulling"}, "both images on their way to the nodes")
    status = preparer.statuses()[0]
    assert (status.percent, status.message) == (33, "Fetching fake/lab:1 onto every node: 1 of 3 nodes done")
    gate.set()
    await task
    assert states(preparer) == {"lab": "ready", "stock": "failed"}
    lab, stock = preparer.statuses()
    assert lab.message.startswith("on every node in") and lab.percent is None
    assert "could not be fetched onto 1 of the cluster's 3 nodes (w2: x)" in stock.message
