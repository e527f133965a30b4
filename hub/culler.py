"""Built-in idle culling: stop servers nobody has used for a while (and, optionally, servers that are too old).

Activity is every request through forward auth, and for Jupyter servers also the server's own
idea of it (``/api/status`` and ``/api/kernels``), so a kernel that is still computing counts.
Culled users read why on their home page; their files are kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import aiohttp
from sqlalchemy import select

from hub.activity import ActivityTracker
from hub.api_models import latest
from hub.config import Settings
from hub.models import Server, ServerState, User, utcnow
from hub.names import server_label, server_prefix, truncate
from hub.servers import Seen, ServerManager
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


# What the culler reads from a user's server, which the user controls: small, plain, quick.
ANSWER_LIMIT = 64 * 1024
"""Bytes of one answer; a longer one is refused, not cut."""
ANSWER_DEPTH = 16
"""Nesting of arrays and objects in one answer (Jupyter's have 2)."""
ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=3, sock_connect=2, sock_read=2)
ASK_SECONDS = 5.0
"""Both questions to one server together."""
CLOCK_SLACK = dt.timedelta(minutes=1)
"""Activity reported further in the future than this is a lie (containers share the host's clock)."""


class UntrustedAnswer(ValueError):
    """A user's server answered something the culler does not read."""


def nesting_within(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects at most `limit` deep (brackets in strings ignored).

    One pass, no regular expression: a crafted answer cannot make it slow.
    """
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


async def read_answer(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> object:
    """The JSON at `url`, read without following redirects and refused when long, deep or slow."""
    async with http.get(
        url,
        headers=headers,
        params={"no_track_activity": "1"},
        allow_redirects=False,
        timeout=ANSWER_TIMEOUT,
        auto_decompress=False,
    ) as response:
        if response.status != 200:
            raise UntrustedAnswer(f"answered {response.status}")
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            raise UntrustedAnswer("answered compressed")
        if (response.content_length or 0) > ANSWER_LIMIT:
            raise UntrustedAnswer(f"announced {response.content_length} bytes")
        body = bytearray()
        async for chunk in response.content.iter_chunked(16 * 1024):
            body += chunk
            if len(body) > ANSWER_LIMIT:
                response.close()
                raise UntrustedAnswer(f"answered more than {ANSWER_LIMIT} bytes")
    text = body.decode("utf-8")
    if not nesting_within(text, ANSWER_DEPTH):
        raise UntrustedAnswer(f"answered JSON nested deeper than {ANSWER_DEPTH}")
    return json.loads(text)


def moment(value: object, now: dt.datetime) -> dt.datetime | None:
    """A reported time, if it is a plain ISO time that is not in the future."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    try:
        parsed = aware(dt.datetime.fromisoformat(value))
    except ValueError:
        return None
    return parsed if parsed is not None and parsed <= now + CLOCK_SLACK else None


async def jupyter_activity(http: aiohttp.ClientSession, server: Server, name: str) -> tuple[dt.datetime | None, bool]:
    """(the Jupyter server's own last activity, whether a kernel is busy right now).

    The server belongs to its user, so its answers are untrusted: when it redirects, answers
    slowly, at length, compressed, deeply nested or not as JSON, it gives no information (None, False).
    """
    base = f"{server.url}{server_prefix(name, server.name)}api"
    headers = {"Authorization": f"token {server.route_secret}", "Accept-Encoding": "identity"}
    try:
        async with asyncio.timeout(ASK_SECONDS):
            status = await read_answer(http, f"{base}/status", headers)
            kernels = await read_answer(http, f"{base}/kernels", headers)
    except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError, OSError) as exc:
        log.info(
            "no activity information from the server of %s: %s", name, truncate(str(exc) or type(exc).__name__, 120)
        )
        return None, False
    status = status if isinstance(status, dict) else {}
    kernels = [kernel for kernel in kernels if isinstance(kernel, dict)] if isinstance(kernels, list) else []
    now = utcnow()
    moments = [moment(status.get("last_activity"), now)] + [
        moment(kernel.get("last_activity"), now) for kernel in kernels
    ]
    parsed = [when for when in moments if when is not None]
    busy = any(kernel.get("execution_state") == "busy" for kernel in kernels)
    return (max(parsed) if parsed else None), busy


class IdleCuller:
    def __init__(self, settings: Settings, servers: ServerManager, activity: ActivityTracker) -> None:
        self.settings = settings
        self.servers = servers
        self.activity = activity

    @property
    def enabled(self) -> bool:
        return self.settings.culler.idle_timeout is not None or self.settings.culler.max_age is not None

    async def run_once(self) -> list[str]:
        """Stop what is idle or too old; returns the servers stopped (``alice``, ``alice/x``: names.server_label)."""
        async with self.servers.sessions() as session:
            rows = (
                await session.execute(
                    select(User.name, Server).join(Server.owner).where(Server.state == ServerState.RUNNING)
                )
            ).all()
        culled = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for name, server in rows:
                label = server_label(name, server.name)
                if self.servers.is_spawning(name, server.name):
                    continue
                try:
                    reason = await self._reason(http, name, server)
                    if reason is None:
                        continue
                    log.info("culling the server of %s: %s", label, reason)
                    seen = Seen(server.state, aware(server.started))
                    if await self.servers.cull(name, reason, seen, server=server.name):
                        culled.append(label)
                except Exception:  # one server's trouble must not stop culling for everyone else
                    log.exception("could not check or cull the server of %s", label)
        return culled

    async def _reason(self, http: aiohttp.ClientSession, name: str, server: Server) -> str | None:
        now = utcnow()
        culler = self.settings.culler
        started = aware(server.started)
        if culler.max_age is not None and started is not None and (now - started).total_seconds() > culler.max_age:
            return (
                f"Your server was stopped because it reached the maximum age of {human(culler.max_age)}. "
                "Your files are kept."
            )
        if culler.idle_timeout is None:
            return None
        last = latest(server.last_activity, self.activity.server_latest(name, server.name), started)
        image = self.settings.image(server.image_name)
        if image is not None and image.jupyter and server.url:
            try:
                own, busy = await jupyter_activity(http, server, name)
            except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as exc:
                log.info("could not ask the server of %s for its activity: %s", name, exc)
                own, busy = None, False
            if busy:
                return None
            last = latest(last, own)
        if last is not None and (now - last).total_seconds() > culler.idle_timeout:
            return (
                f"Your server was stopped after {human(culler.idle_timeout)} without activity. "
                "Your files are kept: start it again whenever you like."
            )
        return None

    async def run_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.culler.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("idle culling failed")
