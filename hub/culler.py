"""Built-in idle culling: stop servers nobody has used for a while (and, optionally, servers that are too old).

Activity is every request through forward auth, and for Jupyter servers also the server's own
idea of it (``/api/status`` and ``/api/kernels``), so a kernel that is still computing counts.
Culled users read why on their home page; their files are kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import aiohttp
from sqlalchemy import select

from hub.activity import ActivityTracker
from hub.api_models import latest
from hub.config import Settings
from hub.models import Server, ServerState, User, utcnow
from hub.names import user_prefix
from hub.servers import ServerManager
from hub.tokens import aware

log = logging.getLogger(__name__)


def human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


async def jupyter_activity(http: aiohttp.ClientSession, server: Server, name: str) -> tuple[dt.datetime | None, bool]:
    """(the Jupyter server's own last activity, whether a kernel is busy right now)."""
    base = f"{server.url}{user_prefix(name)}api"
    headers = {"Authorization": f"token {server.route_secret}"}
    quiet = {"no_track_activity": "1"}  # asking must not count as activity
    async with http.get(f"{base}/status", headers=headers, params=quiet) as response:
        status = await response.json() if response.status == 200 else {}
    async with http.get(f"{base}/kernels", headers=headers, params=quiet) as response:
        kernels = await response.json() if response.status == 200 else []
    # The answers come from the user's container: trust nothing about their shape.
    status = status if isinstance(status, dict) else {}
    kernels = [kernel for kernel in kernels if isinstance(kernel, dict)] if isinstance(kernels, list) else []
    moments = [status.get("last_activity")] + [kernel.get("last_activity") for kernel in kernels]
    parsed = [aware(dt.datetime.fromisoformat(moment.replace("Z", "+00:00")))
              for moment in moments if isinstance(moment, str) and moment]
    busy = any(kernel.get("execution_state") == "busy" for kernel in kernels)
    return (max(parsed) if parsed else None), busy  # type: ignore[type-var]


class IdleCuller:
    def __init__(self, settings: Settings, servers: ServerManager, activity: ActivityTracker) -> None:
        self.settings = settings
        self.servers = servers
        self.activity = activity

    @property
    def enabled(self) -> bool:
        return self.settings.culler.idle_timeout is not None or self.settings.culler.max_age is not None

    async def run_once(self) -> list[str]:
        """Stop what is idle or too old; returns the names of the users whose servers were stopped."""
        async with self.servers.sessions() as session:
            rows = (await session.execute(
                select(User.name, Server).join(Server.owner).where(Server.state == ServerState.RUNNING)
            )).all()
        culled = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for name, server in rows:
                if self.servers.is_spawning(name):
                    continue
                try:
                    reason = await self._reason(http, name, server)
                    if reason is None:
                        continue
                    log.info("culling the server of %s: %s", name, reason)
                    await self.servers.stop(name, reason=reason, only_if_started=server.started)
                    culled.append(name)
                except Exception:  # one server's trouble must not stop culling for everyone else
                    log.exception("could not check or cull the server of %s", name)
        return culled

    async def _reason(self, http: aiohttp.ClientSession, name: str, server: Server) -> str | None:
        now = utcnow()
        culler = self.settings.culler
        started = aware(server.started)
        if culler.max_age is not None and started is not None and (now - started).total_seconds() > culler.max_age:
            return (f"Your server was stopped because it reached the maximum age of {human(culler.max_age)}. "
                    "Your files are kept.")
        if culler.idle_timeout is None:
            return None
        last = latest(server.last_activity, self.activity.server_latest(name), started)
        image = self.settings.image(server.image_name)
        if image is not None and image.jupyter and server.url:
            try:
                own, busy = await jupyter_activity(http, server, name)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError) as exc:
                log.info("could not ask the server of %s for its activity: %s", name, exc)
                own, busy = None, False
            if busy:
                return None
            last = latest(last, own)
        if last is not None and (now - last).total_seconds() > culler.idle_timeout:
            return (f"Your server was stopped after {human(culler.idle_timeout)} without activity. "
                    "Your files are kept: start it again whenever you like.")
        return None

    async def run_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.culler.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("idle culling failed")
