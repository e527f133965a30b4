"""Makes sure a configured image is on the host: found, built from images/<name>, or pulled.

Build and pull steps are reported as they happen, so the progress page shows them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import docker.utils

from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.spawner import Report

log = logging.getLogger(__name__)
CA_ENV = "EXTRA_CA_CERT"
REPORT_EVERY = 1.0

Call = Callable[..., Any]


class ImageProvider:
    def __init__(self, settings: SpawnerSection, client: Callable[[], docker.DockerClient], call: Call) -> None:
        self.settings = settings
        self.client = client
        self.call = call
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, image: ImageSpec, report: Report) -> None:
        """One build or pull per image at a time; a second user waits for the first."""
        async with self._locks.setdefault(image.image, asyncio.Lock()):
            await self._ensure(image, report)

    async def _ensure(self, image: ImageSpec, report: Report) -> None:
        report(5, f"Checking the image {image.image}")
        policy = self.settings.pull_policy
        if image.build or policy != "always":
            try:
                await self.call(lambda: self.client().images.get(image.image))
                return
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                raise SpawnError(f"Docker could not look up the image {image.image}: {exc.explanation}") from exc
        if image.build:
            await self._build(image, report)
        elif policy == "never":
            raise SpawnError(
                f"The image {image.image} is not on this host, and this hub does not pull images. "
                "Ask your administrator to build or pull it."
            )
        else:
            await self._pull(image, report)

    def _threadsafe(self, report: Report) -> Callable[[int, str], None]:
        loop = asyncio.get_running_loop()

        def send(percent: int, message: str) -> None:
            loop.call_soon_threadsafe(report, percent, message)

        return send

    async def _build(self, image: ImageSpec, report: Report) -> None:
        context = self.settings.images_dir / str(image.build)
        if not (context / "Dockerfile").is_file():
            raise SpawnError(
                f"The image {image.image} is missing and cannot be built: {context}/Dockerfile does not exist.",
            )
        args = dict(self.settings.build_args)
        if os.environ.get(CA_ENV):
            args.setdefault(CA_ENV, os.environ[CA_ENV])
        report(10, f"Building the image {image.image} (the first time takes a few minutes)")
        started = time.monotonic()
        send = self._threadsafe(report)

        def build() -> None:
            stream = self.client().api.build(
                path=str(context), tag=image.image, buildargs=args, decode=True, rm=True, forcerm=True
            )
            for line in _messages(stream):
                if line.startswith("Step "):
                    send(15, f"Building {image.image}: {line}")

        try:
            await self.call(build)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            raise SpawnError(f"The image {image.image} could not be built: {exc}", f"build {context}: {exc}") from exc
        log.info("built %s from %s in %.1fs", image.image, context, time.monotonic() - started)

    async def _pull(self, image: ImageSpec, report: Report) -> None:
        report(10, f"Pulling the image {image.image} (this can take a few minutes the first time)")
        started = time.monotonic()
        send = self._threadsafe(report)
        repository, tag = docker.utils.parse_repository_tag(image.image)

        def pull() -> None:
            last = 0.0
            for status in _messages(self.client().api.pull(repository, tag=tag or "latest", stream=True, decode=True)):
                if time.monotonic() - last > REPORT_EVERY:
                    last = time.monotonic()
                    send(15, f"Pulling {image.image}: {status}")

        try:
            await self.call(pull)
        except (docker.errors.APIError, docker.errors.BuildError) as exc:
            explanation = getattr(exc, "explanation", None) or str(exc)
            raise SpawnError(
                f"The image {image.image} could not be pulled: {explanation}", f"pull {image.image}: {exc}"
            ) from exc
        log.info("pulled %s in %.1fs", image.image, time.monotonic() - started)


def _messages(stream: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Readable lines of a build or pull stream; an error in the stream raises BuildError."""
    for chunk in stream:
        if "error" in chunk:
            raise docker.errors.BuildError(str(chunk["error"]).strip(), iter([]))
        text = chunk.get("stream") or chunk.get("status") or ""
        if chunk.get("progress"):
            text = f"{text} {chunk['progress']}"
        text = str(text).strip()
        if text:
            yield text


__all__ = ["ImageProvider"]
