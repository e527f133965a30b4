"""Watches Docker and Traefik. While one is away the hub keeps serving its pages, says plainly that
servers cannot start, retries with growing pauses, and notices by itself when it is back. A person's
Start asks Docker again rather than trusting an "away" that may be seconds old.

A dependency the hub has not reached yet since it started is still starting (docker compose starts Traefik
after the hub): that is logged as information, asked again every second rather than with growing
pauses, and an error only when it stays away past STARTUP_GRACE_SECONDS. Losing one that was there is an
error at once."""

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
RECHECK_TIMEOUT = 5.0


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
        self._docker_question: asyncio.Future[None] | None = None
        self._asked = 0  # questions put to Docker so far (the monitor's checks and starts' questions)
        self._docker_answered = 0  # the newest of them whose answer was recorded

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

    async def require_docker(self) -> None:
        """Raise ServiceUnavailable while Docker is away. A remembered "away" is asked again first (for at most
        RECHECK_TIMEOUT seconds), so a person who clicks Start just after Docker came back is not refused on stale
        news; starts asking at the same moment share one question."""
        if not self.docker_ok:
            if self._docker_question is None:
                self._docker_question = asyncio.ensure_future(self._ask_docker())
            try:  # the shield keeps the question going for the others if this start gives up or is cancelled
                await asyncio.wait_for(asyncio.shield(self._docker_question), RECHECK_TIMEOUT)
            except TimeoutError:
                pass  # a Docker that hangs is away too
        if not self.docker_ok:
            raise ServiceUnavailable(self.notice or "", "docker unreachable (dependency monitor)")

    async def _ask_docker(self) -> None:
        asked = self._next_question()
        try:
            answered = await self.spawner.ping()
        except Exception:
            log.exception("asking Docker whether it is back failed")
            answered = False
        finally:
            self._docker_question = None
        self._record("docker", answered, asked)

    def _next_question(self) -> int:
        self._asked += 1
        return self._asked

    def _record(self, name: str, now: bool, asked: int = 0) -> None:
        """Remember whether a dependency answered, logging what changed. An answer to a question asked before the
        last one recorded (a slow check overtaken by a start's question) is old news and dropped."""
        if name == "docker":
            if asked < self._docker_answered:
                return
            self._docker_answered = asked
        was = self.docker_ok if name == "docker" else self.traefik_ok
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
        if name == "docker":
            self.docker_ok = now
        else:
            self.traefik_ok = now

    async def check(self) -> bool:
        asked = self._next_question()
        docker_ok, traefik_ok = await asyncio.gather(self.spawner.ping(), self.proxy.ping())
        self._record("docker", docker_ok, asked)
        if traefik_ok and not self.traefik_ok:
            await self.proxy.prepare()  # a fresh Traefik reads every route file again; if this fails, the next
            # check finds Traefik "back" again and tries once more
        self._record("traefik", traefik_ok)
        return self.docker_ok and traefik_ok

    def still_starting(self) -> bool:
        """A dependency has not answered once yet, within the start-up grace: worth asking every second."""
        never = {"docker", "traefik"} - self._reached
        return bool(never) and time.monotonic() - self._started <= STARTUP_GRACE_SECONDS

    def next_pause(self, pause: float, healthy: bool, failing: bool) -> tuple[float, bool]:
        """The pause before the next check and whether checks are failing, after a check that was ``healthy``."""
        if healthy:
            return self.interval, False
        if self.still_starting():  # compose and Swarm start the hub's neighbours after it
            return 1.0, True
        return (min(pause * 2, MAX_BACKOFF) if failing else 1.0), True  # retry soon, then less and less often

    async def run(self) -> None:
        pause, failing = (1.0, True) if self.still_starting() else (self.interval, False)
        while True:
            await asyncio.sleep(pause)
            try:
                healthy = await self.check()
            except Exception:
                log.exception("dependency check failed")
                healthy = False
            pause, failing = self.next_pause(pause, healthy, failing)
