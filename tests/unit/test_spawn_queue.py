"""The spawn queue: a fixed number of slots, first come first served, places in line announced."""

from __future__ import annotations

import asyncio

from hub.spawn_queue import SpawnQueue


async def test_starts_beyond_the_limit_wait_in_order_and_learn_their_place() -> None:
    queue = SpawnQueue(2)
    order: list[int] = []
    places: dict[int, list[int]] = {number: [] for number in range(5)}
    release = asyncio.Event()

    async def start(number: int) -> None:
        async with queue.turn(places[number].append):
            order.append(number)
            await release.wait()

    tasks = [asyncio.create_task(start(number)) for number in range(5)]
    await asyncio.sleep(0.01)
    assert order == [0, 1] and queue.active == 2 and queue.waiting == 3
    assert places[2] == [1] and places[3] == [2] and places[4] == [3]
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert places[4][-1] == 1  # moved up to the front before its turn
    assert queue.active == 0 and queue.waiting == 0


async def test_a_cancelled_waiter_leaves_the_line_and_frees_nothing_it_did_not_hold() -> None:
    queue = SpawnQueue(1)
    hold = asyncio.Event()
    seen: list[int] = []

    async def first() -> None:
        async with queue.turn(lambda place: None):
            await hold.wait()

    async def waiter(places: list[int]) -> None:
        async with queue.turn(places.append):
            seen.append(len(places))

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    quitter = asyncio.create_task(waiter([]))
    stayer_places: list[int] = []
    stayer = asyncio.create_task(waiter(stayer_places))
    await asyncio.sleep(0.01)
    assert stayer_places == [2]
    quitter.cancel()
    await asyncio.sleep(0.01)
    assert stayer_places == [2, 1] and queue.waiting == 1
    hold.set()
    await asyncio.gather(holder, stayer)
    assert queue.active == 0 and queue.waiting == 0
