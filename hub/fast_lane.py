"""Routes that Traefik takes from the hub over HTTP while its file provider has not read their files yet.

Traefik re-reads every route file whenever one changes, so with 2,000 routes a new file takes more than a
second to go live. Its HTTP provider polls the hub instead (every 50 ms in the shipped static configs) and
decodes only what the hub serves there: the few routes written lately. So a new route is live within a poll,
and leaves this lane once Traefik lists the same route from its file. Both carry the same configuration,
under Traefik's provider names ``@http`` and ``@file``.

The hub answers Traefik's polls as a long poll: a poll that would only fetch again what its connection got last
time waits until the lane changes (answered at once then) or for HOLD_SECONDS. Traefik's provider asks again only
after an answer, so an idle hub answers about one poll a second instead of twenty, and a new route reaches
Traefik as soon as it is in the lane instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

SECTIONS = ("routers", "services", "middlewares")
POLLED_WITHIN_SECONDS = 2.0
"""Traefik counts as polling the lane when it asked within this long (or while its poll is held)."""
HOLD_SECONDS = 1.0
"""How long a poll that would get nothing new waits for a change; well under Traefik's pollTimeout (2 s in the
shipped static configs), which would count as a failed poll."""
MAX_POLLERS = 64
"""Connections whose last document is remembered; more are forgotten (they are then answered at once)."""


class FastLane:
    """The routes served to Traefik's HTTP provider, keyed by server slug, with their document kept ready."""

    def __init__(self) -> None:
        self._configs: dict[str, dict[str, Any]] = {}
        self._document = b"{}"
        self._routers: frozenset[str] = frozenset()
        self._polled_at: float | None = None
        self._generation = 0
        self._changed = asyncio.Event()
        self._served: dict[object, int] = {}
        """poller (its connection) -> the generation of the document it got last"""
        self._held = 0
        self._released = False

    def put(self, slug: str, config: dict[str, Any]) -> None:
        self._configs[slug] = copy.deepcopy(config)
        self._render()

    def drop(self, slug: str) -> None:
        if self._configs.pop(slug, None) is not None:
            self._render()

    def get(self, slug: str) -> dict[str, Any] | None:
        return self._configs.get(slug)

    def slugs(self) -> list[str]:
        return list(self._configs)

    def routers(self) -> frozenset[str]:
        return self._routers

    def document(self) -> bytes:
        """Traefik's dynamic configuration of every route in the lane (``{}`` when empty: Traefik refuses an
        empty section); asking for it counts as Traefik's poll."""
        self._polled_at = time.monotonic()
        return self._document

    async def poll(self, poller: object, hold: float = HOLD_SECONDS) -> bytes:
        """The document for a poll from ``poller`` (its connection): at once when the lane changed since this
        poller's last answer (or it is new), else once the lane changes or ``hold`` seconds have passed."""
        self._polled_at = time.monotonic()
        if self._served.get(poller) == self._generation and not self._released:
            self._held += 1
            try:
                await asyncio.wait_for(self._changed.wait(), hold)
            except TimeoutError:
                pass
            finally:
                self._held -= 1
        if poller not in self._served and len(self._served) >= MAX_POLLERS:
            self._served.clear()
        self._served[poller] = self._generation
        return self.document()

    def release(self) -> None:
        """Answer the held polls now and hold none from here on (the hub is stopping)."""
        self._released = True
        self._changed.set()

    def polled(self) -> bool:
        """Whether Traefik polls the lane (else a route's file is its only way in)."""
        if self._held:
            return True
        return self._polled_at is not None and time.monotonic() - self._polled_at < POLLED_WITHIN_SECONDS

    def _render(self) -> None:
        merged: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        for config in self._configs.values():
            for section in SECTIONS:
                merged[section].update(config.get("http", {}).get(section, {}))
        self._routers = frozenset(merged["routers"])
        http = {section: entries for section, entries in merged.items() if entries}
        document = json.dumps({"http": http} if http else {}, sort_keys=True).encode()
        if document != self._document:
            self._document = document
            self._generation += 1
            self._changed.set()  # wakes the held polls; later ones wait for the next change
            self._changed = asyncio.Event()
