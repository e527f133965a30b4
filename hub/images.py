"""Makes sure a configured image is on the host: found, built from images/<name>, or pulled.

One check, build or pull per image runs at a time (an ``ImageWork``). Whoever needs the image while it runs
(a user's start, the background preparation of hub/image_prep.py) follows that same work: a late follower is
told what happened so far, then sees each further step on its progress page.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import docker
import docker.errors
import docker.utils

from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.i18n import L_
from hub.spawner import Report

log = logging.getLogger(__name__)
CA_ENV = "EXTRA_CA_CERT"
REPORT_EVERY = 1.0
OUTPUT_LINES = 8
"""How many of a build step's last output lines the progress page shows."""
OUTPUT_EVERY = 0.5
"""Followers are sent a build's new output at most this often (a pip install prints hundreds of lines)."""
BUILD_STEP = re.compile(r"^Step (\d+)/(\d+)\b")

Call = Callable[..., Any]
WorkKind = Literal["checking", "building", "pulling"]
Finished = Callable[["ImageWork", BaseException | None], None]
"""Told when a work ends: the work, and its error (None when the image is now here)."""
Spread = Callable[[ImageSpec, Callable[[str, int | None], None]], Awaitable[None]]
"""Brings an image that is here onto every other node (Swarm's pre-pull), reporting (message, percent)."""


class Stopped(Exception):
    """The hub is shutting down: a build or pull stops reading its stream."""


@dataclass(eq=False)
class ImageWork:
    """One check, build or pull of an image in flight, followed by every start that needs the image."""

    image: str
    kind: WorkKind = "checking"
    headline: str = ""
    """The first line of the build or pull ("Building the image ...")."""
    message: str = ""
    """The latest progress line."""
    percent: int | None = None
    """How far a build is by its steps (0-100); None while not known (checks, pulls)."""
    lines: int = 0
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    """The last lines the current build step printed."""
    output_sent: float = 0.0
    started: float = field(default_factory=time.monotonic)
    followers: list[Report] = field(default_factory=list)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def start_percent(self) -> int:
        """Where a server's start stands while it waits for this work (5 to 28 of its 100)."""
        if self.kind == "checking":
            return 5
        return 10 + (self.percent or 0) * 18 // 100

    def begin(self, kind: WorkKind, headline: str) -> None:
        self.kind, self.headline = kind, headline
        self.report(headline)

    def report(self, message: str, percent: int | None = None) -> None:
        self.message, self.lines = message, self.lines + 1
        if percent is not None:
            self.percent = percent
            self.output.clear()  # a new build step: its own output follows
        self._tell_followers()

    def add_output(self, lines: list[str]) -> None:
        """Lines the build printed; followers see the last of them, at most every OUTPUT_EVERY seconds."""
        self.output.extend(lines)
        now = time.monotonic()
        if now - self.output_sent >= OUTPUT_EVERY:
            self.output_sent = now
            self._tell_followers()

    def _tell_followers(self) -> None:
        for follow in list(self.followers):
            follow(self.start_percent, self.message, tuple(self.output))

    def summary(self) -> str:
        """What a start that joins late is told about the work so far."""
        seconds = time.monotonic() - self.started
        if self.kind == "checking":
            return L_("Checking the image %(image)s (another start is checking it too)", image=self.image)
        return L_(
            "%(headline)s: under way for %(seconds)d s (%(lines)d progress lines so far); your start waits for it",
            headline=self.headline,
            seconds=round(seconds),
            lines=self.lines,
        )


def build_percent(line: str) -> int | None:
    """How far a build is when it prints ``Step 3/8 : RUN ...``: the steps before this one, in percent."""
    match = BUILD_STEP.match(line)
    if match is None:
        return None
    step, steps = int(match.group(1)), int(match.group(2))
    return min(100, (step - 1) * 100 // steps) if steps else None


class ImageProvider:
    def __init__(
        self,
        settings: SpawnerSection,
        client: Callable[[], docker.DockerClient],
        call: Call,
        inspect: Callable[[str], Awaitable[Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.call = call
        self.inspect = inspect
        """Docker's image inspect from the event loop (hub/docker_http.py), for the check before every start"""
        self._running: dict[str, ImageWork] = {}
        self._listeners: list[Finished] = []
        self._stopping = threading.Event()
        self.spread: Spread | None = None
        """Set by a spawner with more than one node (hub/swarm_prepull.py): after the image is on this host, the
        background preparation (hub/image_prep.py) fetches it onto every node with this, reporting progress."""

    def work(self, image: str) -> ImageWork | None:
        """The check, build or pull of this image reference under way, if any."""
        return self._running.get(image)

    def watch(self, listener: Finished) -> None:
        """Call ``listener`` whenever a work ends, whoever started it."""
        self._listeners.append(listener)

    async def ensure(self, image: ImageSpec, report: Report) -> None:
        """Return once the image is on the host; raise SpawnError saying why it is not.

        One work per image at a time: a second caller joins the first's and gets its outcome. Cancelling a
        caller only stops it following; the work goes on for the others (and for the next start).
        """
        work = self._running.get(image.image)
        if work is None:
            work = ImageWork(image.image)
            work.task = asyncio.create_task(self._run(image, work), name=f"image {image.image}")
            self._running[image.image] = work
        elif work.lines:
            report(work.start_percent, work.summary())
            if work.message != work.headline:
                report(work.start_percent, work.message, tuple(work.output))
        assert work.task is not None
        work.followers.append(report)
        try:
            await asyncio.shield(work.task)
        finally:
            work.followers.remove(report)

    async def present(self, image: ImageSpec) -> bool:
        """Whether the image is on the host (no build, no pull)."""
        try:
            if self.inspect is not None:
                await self.inspect(image.image)
            else:
                await self.call(lambda: self.client().images.get(image.image))
        except docker.errors.NotFound:  # ImageNotFound from the SDK
            return False
        except docker.errors.APIError as exc:
            raise SpawnError(
                L_(
                    "Docker could not look up the image %(image)s: %(reason)s",
                    image=image.image,
                    reason=exc.explanation,
                )
            ) from exc
        return True

    async def close(self) -> None:
        """Stop the works under way (the hub is shutting down): their threads stop at the next stream line."""
        self._stopping.set()
        tasks = [work.task for work in self._running.values() if work.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, image: ImageSpec, work: ImageWork) -> None:
        error: BaseException | None = None
        try:
            await self._ensure(image, work)
        except BaseException as exc:
            error = exc
            raise
        finally:
            del self._running[image.image]
            for listener in self._listeners:
                try:
                    listener(work, error)
                except Exception:
                    log.exception("a listener of the image work %s failed", image.image)

    async def _ensure(self, image: ImageSpec, work: ImageWork) -> None:
        """The work itself: check, then build or pull as the image and ``spawner.pull_policy`` say."""
        work.report(L_("Checking the image %(image)s", image=image.image))
        policy = self.settings.pull_policy
        if (image.build or policy != "always") and await self.present(image):
            return
        if image.build:
            await self._build(image, work)
        elif policy == "never":
            raise SpawnError(
                L_(
                    "The image %(image)s is not on this host, and this hub does not pull images. "
                    "Ask your administrator to build or pull it.",
                    image=image.image,
                )
            )
        else:
            await self._pull(image, work)

    def _threadsafe(self, work: ImageWork) -> Callable[[str, int | None], None]:
        loop = asyncio.get_running_loop()

        def send(message: str, percent: int | None) -> None:
            loop.call_soon_threadsafe(work.report, message, percent)

        return send

    async def _build(self, image: ImageSpec, work: ImageWork) -> None:
        context = self.settings.images_dir / str(image.build)
        if not (context / "Dockerfile").is_file():
            raise SpawnError(
                L_(
                    "The image %(image)s is missing and cannot be built: %(path)s does not exist.",
                    image=image.image,
                    path=str(context / "Dockerfile"),
                ),
            )
        args = dict(self.settings.build_args)
        if os.environ.get(CA_ENV):
            args.setdefault(CA_ENV, os.environ[CA_ENV])
        work.begin(
            "building", L_("Building the image %(image)s (the first time takes a few minutes)", image=image.image)
        )
        started = time.monotonic()
        send = self._threadsafe(work)
        loop = asyncio.get_running_loop()

        def show(text: str) -> None:
            lines = [part.rstrip() for part in text.replace("\r", "\n").split("\n") if part.strip()]
            if lines:
                loop.call_soon_threadsafe(work.add_output, lines)

        def build() -> None:
            stream = self.client().api.build(
                path=str(context), tag=image.image, buildargs=args, decode=True, rm=True, forcerm=True
            )
            for line in _messages(stream, self._stopping):
                if line.startswith("Step "):
                    send(L_("Building %(image)s: %(step)s", image=image.image, step=line), build_percent(line))
                else:
                    show(line)

        try:
            await self.call(build)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            raise SpawnError(
                L_("The image %(image)s could not be built: %(reason)s", image=image.image, reason=str(exc)),
                f"build {context}: {exc}",
            ) from exc
        log.info("built %s from %s in %.1fs", image.image, context, time.monotonic() - started)

    async def _pull(self, image: ImageSpec, work: ImageWork) -> None:
        work.begin(
            "pulling", L_("Pulling the image %(image)s (this can take a few minutes the first time)", image=image.image)
        )
        started = time.monotonic()
        send = self._threadsafe(work)
        repository, tag = docker.utils.parse_repository_tag(image.image)

        def pull() -> None:
            last = 0.0
            stream = self.client().api.pull(repository, tag=tag or "latest", stream=True, decode=True)
            for status in _messages(stream, self._stopping):
                if time.monotonic() - last > REPORT_EVERY:
                    last = time.monotonic()
                    send(L_("Pulling %(image)s: %(status)s", image=image.image, status=status), None)

        try:
            await self.call(pull)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            explanation = getattr(exc, "explanation", None) or str(exc)
            raise SpawnError(
                L_("The image %(image)s could not be pulled: %(reason)s", image=image.image, reason=explanation),
                f"pull {image.image}: {exc}",
            ) from exc
        log.info("pulled %s in %.1fs", image.image, time.monotonic() - started)


def _messages(stream: Iterator[dict[str, Any]], stopping: threading.Event) -> Iterator[str]:
    """Readable lines of a build or pull stream; an error in the stream raises BuildError, and the hub
    shutting down raises Stopped (so the thread ends: Python waits for it before exiting)."""
    for chunk in stream:
        if stopping.is_set():
            raise Stopped()
        if "error" in chunk:
            raise docker.errors.BuildError(str(chunk["error"]).strip(), iter([]))
        text = chunk.get("stream") or chunk.get("status") or ""
        if chunk.get("progress"):
            text = f"{text} {chunk['progress']}"
        text = str(text).strip()
        if text:
            yield text


__all__ = ["ImageProvider", "ImageWork", "build_percent"]
