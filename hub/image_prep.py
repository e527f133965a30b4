"""Prepares every offered image in the background, so that nobody waits for a build or a pull.

When the hub starts (once Docker answers), and again whenever Docker comes back after being away, each
configured image is checked and, when missing, built or pulled through the ``ImageProvider`` (at most
``spawner.prepare_concurrency`` at a time). ``spawner.pull_policy`` is kept: ``never`` only checks images that
would have to be pulled (they are *missing* until an admin pulls them; images with ``build:`` are built, as a
start would), ``always`` pulls each image once more in the background, ``ifnotpresent`` builds or pulls the
missing ones.

A person who picks an image still being prepared joins that same work and sees its progress (the provider
shares it). A failure blocks nothing: the image is shown as *failed* with the reason, and the next start of
it tries again. The config is read at start only, so a changed image list is prepared at the next start.

States (``ImageStatus.state``)::

    unchecked  preparation is off (spawner.prepare_images: false) and no start has needed the image yet
    waiting    waiting for its turn, or for Docker
    checking   looking whether Docker has it
    building   being built (message: the latest step; percent: steps done)
    pulling    being pulled (message: the latest status line); with spawner.backend swarm also while it is
               fetched onto every node of the cluster (message: how many nodes are done; percent)
    ready      on the host
    failed     could not be built or pulled (message: why); the next start tries again
    missing    not on the host, and spawner.pull_policy is never
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hub.config import ImageSpec, SpawnerSection
from hub.errors import HubError, ServiceUnavailable
from hub.i18n import L_, N_, Text

if TYPE_CHECKING:  # hub.images loads the Docker SDK: only a Docker spawner, which brings it, makes a provider
    from hub.images import ImageProvider, ImageWork

log = logging.getLogger(__name__)
State = Literal["unchecked", "waiting", "checking", "building", "pulling", "ready", "failed", "missing"]
WATCH_SECONDS = 1.0
"""How often the preparer looks whether Docker came back (a cheap look at the dependency monitor)."""
RETRY_SECONDS = 30.0
"""Least pause before images that failed because Docker was away are tried again, when the dependency monitor
did not notice Docker going away (a short blip)."""
DONE_WORDS = {"building": N_("built in %(seconds)d s"), "pulling": N_("pulled in %(seconds)d s")}
STATE_WORDS = {
    "unchecked": N_("unchecked"),
    "waiting": N_("waiting"),
    "checking": N_("checking"),
    "building": N_("building"),
    "pulling": N_("pulling"),
    "ready": N_("ready"),
    "failed": N_("failed"),
    "missing": N_("missing"),
}
"""Each state in words for the admin panel (the page translates them)."""


@dataclass(frozen=True, slots=True)
class ImageStatus:
    """What the admin panel and GET /hub/api/images show about one offered image."""

    name: str
    title: str
    image: str
    state: State
    message: str = ""
    """The latest progress line (building, pulling), why it failed or is missing, or how it became ready."""
    percent: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "image": self.image,
            "state": self.state,
            "message": self.message,
            "percent": self.percent,
        }


class ImagePreparer:
    def __init__(self, images: Sequence[ImageSpec], provider: ImageProvider, settings: SpawnerSection) -> None:
        self.images = list(images)
        self.provider = provider
        self.enabled = settings.prepare_images
        self.policy = settings.pull_policy
        self.concurrency = settings.prepare_concurrency
        self.watch_seconds = WATCH_SECONDS
        self.retry_seconds = RETRY_SECONDS
        initial: State = "waiting" if self.enabled else "unchecked"
        self._states: dict[str, tuple[State, str]] = {image.image: (initial, "") for image in self.images}
        self._percent: dict[str, int] = {}
        """How far the fetching onto every node is (a cluster's nodes done, in percent)."""
        self._docker_failed: set[str] = set()
        """Image references whose preparation failed because Docker was away: prepared again when it is back."""
        provider.watch(self._finished)

    def statuses(self) -> list[ImageStatus]:
        """Each offered image's state, with the live progress of a build or pull under way (whoever started it)."""
        found = []
        for image in self.images:
            work = self.provider.work(image.image)
            if work is not None and work.kind != "checking":
                status = ImageStatus(image.name, image.title, image.image, work.kind, work.message, work.percent)
            elif work is not None:
                status = ImageStatus(image.name, image.title, image.image, "checking")
            else:
                state, message = self._states[image.image]
                percent = self._percent.get(image.image)
                status = ImageStatus(image.name, image.title, image.image, state, message, percent)
            found.append(status)
        return found

    async def run(self, docker_up: Callable[[], bool]) -> None:
        """Prepare once Docker answers, and again each time it comes back after being away (until cancelled)."""
        if not self.enabled:
            return
        was_up, retry_at = False, 0.0
        while True:
            up = docker_up()
            if up and (not was_up or (self._docker_failed and time.monotonic() >= retry_at)):
                await self.prepare_all()
                retry_at = time.monotonic() + self.retry_seconds
            was_up = up
            await asyncio.sleep(self.watch_seconds)

    async def prepare_all(self) -> None:
        """Check, and build or pull, every image not known to be ready; ``prepare_concurrency`` at a time."""
        todo: dict[str, ImageSpec] = {}
        for image in self.images:
            if self._states[image.image][0] != "ready":
                todo.setdefault(image.image, image)  # two offered images may share one Docker image
        self._docker_failed.clear()
        for reference in todo:
            self._states[reference] = ("waiting", "")
        turn = asyncio.Semaphore(self.concurrency)
        started = time.monotonic()
        await asyncio.gather(*(self._prepare(image, turn) for image in todo.values()))
        if todo:
            counts: dict[str, int] = {}
            for state, _ in self._states.values():
                counts[state] = counts.get(state, 0) + 1
            log.info(
                "prepared %d images in %.1fs: %s",
                len(todo),
                time.monotonic() - started,
                ", ".join(f"{count} {state}" for state, count in sorted(counts.items())),
            )

    async def _prepare(self, image: ImageSpec, turn: asyncio.Semaphore) -> None:
        async with turn:
            self._states[image.image] = ("checking", "")
            if self.policy != "never" or image.build:
                try:
                    await self.provider.ensure(image, _not_followed)
                except Exception:
                    return  # every work's outcome, good or bad, is noted by _finished
                await self._spread(image)
                return
            try:
                here = await self.provider.present(image)
            except Exception as exc:
                self._note_failure(image.image, exc)
                return
            self._states[image.image] = ("ready", "") if here else ("missing", self._missing_reason(image))

    async def _spread(self, image: ImageSpec) -> None:
        """Onto every node of a cluster (``provider.spread``), once the image is on the hub's own node."""
        spread = self.provider.spread
        if spread is None or self._states[image.image][0] != "ready":
            return
        started = time.monotonic()

        def progress(message: str, percent: int | None) -> None:
            self._states[image.image] = ("pulling", message)
            if percent is not None:
                self._percent[image.image] = percent

        try:
            await spread(image, progress)
        except Exception as exc:
            self._note_failure(image.image, exc)
        else:
            seconds = round(time.monotonic() - started)
            self._states[image.image] = (
                "ready",
                Text(N_("on every node in %(seconds)d s"), names={"seconds": seconds}),
            )
        finally:
            self._percent.pop(image.image, None)

    def _missing_reason(self, image: ImageSpec) -> str:
        return L_(
            "The image %(image)s is not on this host, and this hub does not pull images "
            "(spawner.pull_policy: never): pull or build it by hand.",
            image=image.image,
        )

    def _finished(self, work: ImageWork, error: BaseException | None) -> None:
        """Any work on an offered image ended (the preparation's or a user's start): note the outcome."""
        if work.image not in self._states:
            return
        if error is None:
            seconds = time.monotonic() - work.started
            done = DONE_WORDS.get(work.kind)
            self._states[work.image] = ("ready", Text(done, names={"seconds": round(seconds)}) if done else "")
            self._docker_failed.discard(work.image)
        elif isinstance(error, asyncio.CancelledError):
            self._states[work.image] = ("waiting", N_("Interrupted: the hub is shutting down"))
        else:
            self._note_failure(work.image, error)

    def _note_failure(self, reference: str, error: BaseException) -> None:
        if isinstance(error, ServiceUnavailable):
            self._docker_failed.add(reference)
            self._states[reference] = ("waiting", N_("Waiting for Docker to be reachable again"))
            log.warning("image %s: %s", reference, error.detail)
            return
        reason = (
            error.user_message if isinstance(error, HubError) else L_("Unexpected error: %(error)s", error=str(error))
        )
        detail = error.detail if isinstance(error, HubError) else repr(error)
        self._states[reference] = ("failed", reason)
        log.warning("image %s could not be prepared: %s", reference, detail)


def _not_followed(progress: int, message: str, output: tuple[str, ...] = ()) -> None:
    """The preparation reads progress from the work itself (``ImagePreparer.statuses``)."""


__all__ = ["ImagePreparer", "ImageStatus"]
