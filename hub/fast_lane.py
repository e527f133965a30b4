"""Routes that Traefik takes from the hub over HTTP while its file provider has not read their files yet.

Traefik re-reads every route file whenever one changes, so with 2,000 routes a new file takes more than a
second to go live. Its HTTP provider polls the hub instead (every 50 ms in the shipped static configs) and
decodes only what the hub serves there: the few routes written lately. So a new route is live within a poll,
and leaves this lane once Traefik lists the same route from its file. Both carry the same configuration,
under Traefik's provider names ``@http`` and ``@file``.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

SECTIONS = ("routers", "services", "middlewares")
POLLED_WITHIN_SECONDS = 2.0
"""Traefik counts as polling the lane when it asked within this long (it asks every 50 ms)."""


class FastLane:
    """The routes served to Traefik's HTTP provider, keyed by server slug, with their document kept ready."""

    def __init__(self) -> None:
        self._configs: dict[str, dict[str, Any]] = {}
        self._document = b"{}"
        self._routers: frozenset[str] = frozenset()
        self._polled_at: float | None = None

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

    def polled(self) -> bool:
        """Whether Traefik polls the lane (else a route's file is its only way in)."""
        return self._polled_at is not None and time.monotonic() - self._polled_at < POLLED_WITHIN_SECONDS

    def _render(self) -> None:
        merged: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        for config in self._configs.values():
            for section in SECTIONS:
                merged[section].update(config.get("http", {}).get(section, {}))
        self._routers = frozenset(merged["routers"])
        http = {section: entries for section, entries in merged.items() if entries}
        self._document = json.dumps({"http": http} if http else {}, sort_keys=True).encode()
