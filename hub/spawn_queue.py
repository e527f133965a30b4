"""At most N server starts at once; the others wait first come, first served, and learn their place in line."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

Position = Callable[[int], None]


class SpawnQueue:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiting: deque[tuple[asyncio.Future[None], Position]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def turn(self, on_position: Position) -> AsyncIterator[None]:
        """Wait for a free slot (calling ``on_position(n)`` whenever the place in line changes), then hold it."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (granted, on_position)
            self._waiting.append(entry)
            on_position(len(self._waiting))
            try:
                await granted
            except asyncio.CancelledError:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                    self._announce()
                elif granted.done() and not granted.cancelled():
                    self._release()  # the slot came just as we were cancelled: hand it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.active -= 1
        while self.active < self.limit and self._waiting:
            granted, _ = self._waiting.popleft()
            if not granted.done():
                self.active += 1
                granted.set_result(None)
        self._announce()

    def _announce(self) -> None:
        for place, (_, on_position) in enumerate(self._waiting, start=1):
            on_position(place)
