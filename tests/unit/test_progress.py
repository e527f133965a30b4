"""A spawn's progress replays to late followers and ends at ready or failed."""

from __future__ import annotations

import asyncio

from hub.progress import ProgressEvent, SpawnProgress


async def collect(progress: SpawnProgress) -> list[str]:
    return [event.message async for event in progress.follow()]


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
