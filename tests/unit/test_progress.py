"""A spawn's progress replays to late followers and ends at ready or failed."""

from __future__ import annotations

import asyncio

from hub.progress import ProgressEvent, SpawnProgress


async def collect(progress: SpawnProgress) -> list[str]:
    return [event.message async for event in progress.follow() if event is not None]


async def test_a_follower_that_joins_late_sees_every_step() -> None:
    progress = SpawnProgress()
    progress.report(0, "starting")
    progress.report(50, "waiting")
    early = asyncio.create_task(collect(progress))
    await asyncio.sleep(0)
    progress.emit(ProgressEvent(100, "ready", ready=True, url="/user/a/lab"))
    progress.report(100, "after the end is ignored")
    late = await collect(progress)
    assert await early == late == ["starting", "waiting", "ready"]
    assert progress.finished and progress.latest is not None and progress.latest.as_json()["url"] == "/user/a/lab"


async def test_failure_ends_the_stream_with_the_reason() -> None:
    progress = SpawnProgress()
    follower = asyncio.create_task(collect(progress))
    await asyncio.sleep(0)
    progress.emit(ProgressEvent(100, "exit code 3", failed=True))
    assert await asyncio.wait_for(follower, 1) == ["exit code 3"]


async def test_a_quiet_spawn_sends_keepalives_and_a_reconnect_resumes() -> None:
    progress = SpawnProgress()
    progress.report(0, "starting")
    progress.report(10, "building")
    seen: list[str | None] = []

    async def follow() -> None:
        async for event in progress.follow(start=1, keepalive=0.05):
            seen.append(event.message if event else None)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    progress.emit(ProgressEvent(100, "ready", ready=True, url="/user/a/"))
    await asyncio.wait_for(follower, 1)
    assert seen[0] == "building" and seen[-1] == "ready"
    assert None in seen  # keepalives while nothing happened, and the stream went on afterwards
