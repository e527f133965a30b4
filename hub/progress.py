"""The events of one spawn, kept so that a page opened (or reloaded) mid-spawn sees them all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    progress: int
    message: str
    ready: bool = False
    failed: bool = False
    url: str | None = None
    output: tuple[str, ...] = ()
    """The last lines an image build printed (empty for other steps); the progress page shows them in a box."""

    def as_json(self) -> dict[str, Any]:
        """The JSON JupyterHub's progress stream sends (progress, message, ready, failed, url), and ``output``
        while an image is built (a key JupyterHub's clients ignore)."""
        data = asdict(self)
        if self.url is None:
            del data["url"]
        if not self.output:
            del data["output"]
        else:
            data["output"] = list(self.output)
        return data


class SpawnProgress:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self._changed = asyncio.Event()

    @property
    def finished(self) -> bool:
        return bool(self.events) and (self.events[-1].ready or self.events[-1].failed)

    @property
    def latest(self) -> ProgressEvent | None:
        return self.events[-1] if self.events else None

    def emit(self, event: ProgressEvent) -> None:
        if self.finished:
            return
        self.events.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def report(self, progress: int, message: str, output: tuple[str, ...] = ()) -> None:
        self.emit(ProgressEvent(progress, message, output=output))

    async def follow(self, start: int = 0, keepalive: float | None = None) -> AsyncIterator[ProgressEvent | None]:
        """Every event from number ``start`` on, then each new one, until the spawn is ready or failed.

        With ``keepalive``, None is yielded after that many quiet seconds (for SSE comments).
        """
        seen = start
        while True:
            changed = self._changed
            while seen < len(self.events):
                seen += 1
                yield self.events[seen - 1]
            if self.finished:
                return
            try:
                await asyncio.wait_for(changed.wait(), keepalive)
            except TimeoutError:
                yield None
