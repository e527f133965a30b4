"""The fast lane's long poll (hub/fast_lane.py): a poll that would fetch nothing new waits for a change."""

from __future__ import annotations

import asyncio

from hub.fast_lane import FastLane

ROUTE = {"http": {"routers": {"user-alice": {"rule": "PathPrefix(`/user/alice/`)", "service": "user-alice"}}}}


async def test_a_new_poller_gets_the_document_at_once() -> None:
    lane = FastLane()
    lane.put("alice", ROUTE)
    assert b"user-alice" in await asyncio.wait_for(lane.poll("traefik"), 0.5)


async def test_a_poll_with_nothing_new_waits_and_a_change_answers_it_at_once() -> None:
    lane = FastLane()
    await lane.poll("traefik")
    held = asyncio.ensure_future(lane.poll("traefik", hold=30))
    await asyncio.sleep(0.05)
    assert not held.done(), "a poll with nothing new was answered at once"
    assert lane.polled(), "a held poll must count as Traefik polling"
    lane.put("alice", ROUTE)
    assert b"user-alice" in await asyncio.wait_for(held, 1)


async def test_a_held_poll_ends_after_its_hold_with_the_same_document() -> None:
    lane = FastLane()
    first = await lane.poll("traefik")
    assert await asyncio.wait_for(lane.poll("traefik", hold=0.05), 1) == first


async def test_each_connection_is_answered_for_what_it_has_seen() -> None:
    lane = FastLane()
    await lane.poll("old connection")
    lane.put("alice", ROUTE)
    await lane.poll("new connection")
    # the old connection has not seen alice's route yet: no wait for it
    assert b"user-alice" in await asyncio.wait_for(lane.poll("old connection", hold=30), 0.5)


async def test_an_unchanged_document_wakes_nobody() -> None:
    lane = FastLane()
    lane.put("alice", ROUTE)
    await lane.poll("traefik")
    held = asyncio.ensure_future(lane.poll("traefik", hold=30))
    await asyncio.sleep(0.02)
    lane.put("alice", ROUTE)  # the same route again: the same document
    await asyncio.sleep(0.05)
    assert not held.done()
    lane.drop("alice")
    assert await asyncio.wait_for(held, 1) == b"{}"


async def test_releasing_answers_held_polls_and_holds_no_more() -> None:
    lane = FastLane()
    await lane.poll("traefik")
    held = asyncio.ensure_future(lane.poll("traefik", hold=30))
    await asyncio.sleep(0.02)
    lane.release()
    assert await asyncio.wait_for(held, 1) == b"{}"
    assert await asyncio.wait_for(lane.poll("traefik", hold=30), 1) == b"{}"
