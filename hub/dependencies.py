"""Watches Docker and Traefik. While one is away the hub keeps serving its pages, says plainly that
servers cannot start, retries with growing pauses, and notices by itself when it is back.

A dependency the hub has not reached yet since it started is still starting (docker compose starts Traefik
after the hub): that is logged as information, and as an error only when it stays away past
STARTUP_GRACE_SECONDS. Losing one that was there is an error at once."""

from __future__ import annotations

import asyncio
import logging
import time

from hub.errors import ServiceUnavailable
from hub.i18n import N_
from hub.proxy import Proxy
from hub.spawner import Spawner

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
STARTUP_GRACE_SECONDS = 60.0


class DependencyMonitor:
    def __init__(self, spawner: Spawner, proxy: Proxy, interval: float) -> None:
        self.spawner = spawner
        self.proxy = proxy
        self.interval = interval
        self.docker_ok = True
        self.traefik_ok = True
        self._started = time.monotonic()
        self._reached: set[str] = set()
        self._late: set[str] = set()

    @property
    def notice(self) -> str | None:
        """What users should know right now, or None when all is well."""
        if not self.docker_ok:
            return N_(
                "Servers cannot start or stop right now: the hub cannot reach Docker. "
                "It keeps trying by itself; please try again in a minute."
            )
        if not self.traefik_ok:
            return N_(
                "Servers cannot be reached right now: the hub cannot reach its proxy. "
                "It keeps trying by itself; running servers keep their work."
            )
        return None

    def require_docker(self) -> None:
        if not self.docker_ok:
            raise ServiceUnavailable(self.notice or "", "docker unreachable (dependency monitor)")

    async def check(self) -> bool:
        docker_ok, traefik_ok = await asyncio.gather(self.spawner.ping(), self.proxy.ping())
        for name, was, now in (("docker", self.docker_ok, docker_ok), ("traefik", self.traefik_ok, traefik_ok)):
            first_time = name not in self._reached
            if now:
                self._reached.add(name)
            if was and not now:
                if first_time:
                    log.info("%s is not reachable yet (it may still be starting); the hub waits for it", name)
                else:
                    log.error("%s is unreachable; retrying with backoff", name)
            elif now and not was:
                log.info("%s is reachable%s", name, "" if first_time else " again")
            elif not now and first_time and name not in self._late:
                waited = time.monotonic() - self._started
                if waited > STARTUP_GRACE_SECONDS:
                    self._late.add(name)
                    log.error("%s has not been reachable since the hub started %.0f s ago; still trying", name, waited)
        if traefik_ok and not self.traefik_ok:
            await self.proxy.prepare()  # a fresh Traefik reads every route file again by itself
        self.docker_ok, self.traefik_ok = docker_ok, traefik_ok
        return docker_ok and traefik_ok

    async def run(self) -> None:
        pause, failing = self.interval, False
        while True:
            await asyncio.sleep(pause)
            try:
                healthy = await self.check()
            except Exception:
                log.exception("dependency check failed")
                healthy = False
            if healthy:
                pause, failing = self.interval, False
            else:  # retry soon, then less and less often
                pause, failing = (min(pause * 2, MAX_BACKOFF) if failing else 1.0), True
