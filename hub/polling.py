"""Pauses between looks that stretch with the number of lookers, so that the hub's total rate of looks at one
kind of thing (starting servers' ports, Traefik's API, Swarm tasks) stays that of one waiter, up to the number
of waiters at which each one's pause reaches its longest (``most / pause``: 10 for ports and routes); beyond that,
each looks every ``most`` seconds.

One person starting a server gets the quickest looks; in a storm of thirty, each waiter looks less often, and the
CPU the looks would take (the hub's and Traefik's) goes to the servers that are booting instead. A waiter's answer
comes on average half a pause later, which is a small share of a wait that a storm makes long anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class SharedPace:
    def __init__(self, pause: float, most: float) -> None:
        """``pause`` between one waiter's looks when it waits alone; never more than ``most`` however many wait."""
        self.base = pause
        self.most = most
        self.waiters = 0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Count the caller among the waiters while it is inside the block."""
        self.waiters += 1
        try:
            yield
        finally:
            self.waiters -= 1

    def pause(self, at_least: float = 0.0) -> float:
        """The next pause: the base pause times the number of waiters, or ``at_least`` if longer; at most ``most``."""
        return min(max(self.base * max(1, self.waiters), at_least), self.most)
