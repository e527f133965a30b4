"""Docker's event stream, read once for the whole hub: which of its containers stopped.

A start waits for its server to answer; it must also notice a container that exits on the way (a crash, out
of memory). Asking Docker about each starting container every few seconds cost most of the hub's CPU with
many starting at once; one event stream costs nothing while nothing happens. While the stream is down
(Docker restarting), :attr:`ContainerDeaths.live` is False and the waiters ask Docker themselves again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import docker

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 2.0


class ContainerDeaths:
    """Events (``die``) of the containers with the label ``hub.prefix=<prefix>``, handed to the event loop."""

    def __init__(self, client: Callable[[], docker.DockerClient], prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[str, asyncio.Event] = {}
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.live = False

    def watch(self, container_id: str) -> asyncio.Event:
        """An event set when this container stops; call :meth:`forget` when done with it."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
            self._thread.start()
        return self._watched.setdefault(container_id, asyncio.Event())

    def forget(self, container_id: str) -> None:
        self._watched.pop(container_id, None)

    def close(self) -> None:
        self._closing.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _read(self) -> None:
        filters = {"type": "container", "event": ["die"], "label": [f"hub.prefix={self._prefix}"]}
        while not self._closing.is_set():
            try:
                self._stream = self._client().events(filters=filters, decode=True)
                self._set_live(True)
                for event in self._stream:
                    self._dispatch(event)
            except Exception as exc:  # Docker away or restarting: the waiters poll until the stream is back
                if self.live and not self._closing.is_set():
                    log.info("docker event stream interrupted (%s); reconnecting", exc)
            finally:
                self._set_live(False)
                self._stream = None
            self._closing.wait(RECONNECT_SECONDS)

    def _set_live(self, live: bool) -> None:
        self.live = live
        if not live and self._loop is not None and not self._loop.is_closed():
            # Events may have been missed while the stream was down: every waiter looks at Docker once.
            self._loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in self._watched.values():
            event.set()

    def _dispatch(self, event: dict[str, Any]) -> None:
        container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
        if container_id and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._set, container_id)

    def _set(self, container_id: str) -> None:
        waiting = self._watched.get(container_id)
        if waiting is not None:
            waiting.set()
