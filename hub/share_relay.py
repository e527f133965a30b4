"""WebSockets of people a server is shared with go through the hub, so that revoking a share closes them.

Traefik never closes a WebSocket it has already opened, whatever changes in its configuration, and
forward auth runs once, at the upgrade. So a recipient's WebSocket (the routers of hub/traefik.py send
upgrades that carry the ``hubshare`` marker cookie here) is relayed by the hub: it opens its own WebSocket to
the server, with the server's token, and copies messages both ways. Every open relay is indexed by
(owner, server, recipient); ``sweep`` closes those whose recipient may no longer use the server (a share
revoked or expired, a group left, an account gone). It runs after every change of shares and every second.

Who the recipient is comes from forward auth, as a short-lived ticket signed with a key that only this
hub process holds (``TicketSigner``): a header a client sends cannot pass for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)
TICKET_SECONDS = 30
SHARE_TICKET_HEADER = "X-Share-Ticket"
SHARE_COOKIE = "hubshare"
"""The marker cookie (value ``1``, path: the shared server's prefix) that routes a recipient's WebSockets here."""
RELAY_PREFIX = "/hub/share-relay"
SWEEP_SECONDS = 1.0
REVOKED_CLOSE_CODE = 4003
"""The close code a recipient's WebSocket gets when their access ends (4000-4999: for applications)."""
REVOKED_REASON = b"Access to this server was revoked."


@dataclass(frozen=True, slots=True)
class Ticket:
    user: str
    owner: str
    server: str


class TicketSigner:
    """Short-lived statements ``user may relay to owner/server``, signed with a key held in memory."""

    def __init__(self, key: bytes | None = None, lifetime: float = TICKET_SECONDS) -> None:
        self._key = key or secrets.token_bytes(32)
        self.lifetime = lifetime

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, ticket: Ticket, now: float | None = None) -> str:
        # user and server names never hold "|" (hub/names.py), so the fields split back unambiguously
        expiry = int((now if now is not None else time.time()) + self.lifetime)
        body = f"{ticket.user}|{ticket.owner}|{ticket.server}|{expiry}"
        return f"{body}|{self._mac(body)}"

    def verify(self, text: str | None, now: float | None = None) -> Ticket | None:
        """The ticket, if the text is one this hub signed and it has not run out; else None."""
        if not text or len(text) > 400:
            return None
        body, _, mac = text.rpartition("|")
        parts = body.split("|")
        if len(parts) != 4 or not hmac.compare_digest(mac, self._mac(body)):
            return None
        user, owner, server, expiry = parts
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        return Ticket(user, owner, server)


@dataclass(eq=False)
class Relay:
    """One recipient's WebSocket and the hub's own WebSocket to the server."""

    ticket: Ticket
    down: web.WebSocketResponse
    up: aiohttp.ClientWebSocketResponse
    tasks: list[asyncio.Future[None]] = field(default_factory=list)
    ending: tuple[int, bytes] | None = None
    """Set by ``end``: the close code and reason the recipient gets."""

    def end(self, code: int = REVOKED_CLOSE_CODE, message: bytes = REVOKED_REASON) -> None:
        """Stop copying; ``RelayRegistry.run`` then closes both sides (only it touches the sockets)."""
        if self.ending is None:
            self.ending = (code, message)
        for task in self.tasks:
            task.cancel()


async def pump_down_to_up(relay: Relay) -> None:
    async for message in relay.down:
        if message.type == WSMsgType.TEXT:
            await relay.up.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await relay.up.send_bytes(message.data)
        else:
            break


async def pump_up_to_down(relay: Relay) -> None:
    async for message in relay.up:
        if message.type == WSMsgType.TEXT:
            await relay.down.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await relay.down.send_bytes(message.data)
        else:
            break


class RelayRegistry:
    """The open relays, and the rule that says which may stay open."""

    def __init__(self, may_reach: Callable[[str, str, str], bool]) -> None:
        self.may_reach = may_reach
        self._open: dict[tuple[str, str, str], set[Relay]] = {}
        self._http: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._http

    def count_of(self, user: str, owner: str, server: str) -> int:
        """Open relays of one person to one server."""
        return len(self._open.get((owner, server, user), ()))

    def count(self, owner: str | None = None, server: str | None = None) -> int:
        return sum(
            len(relays)
            for (o, s, _), relays in self._open.items()
            if (owner is None or o == owner) and (server is None or s == server)
        )

    async def run(self, relay: Relay) -> None:
        """Copy messages both ways until either side closes or ``Relay.end`` is called, then close both."""
        key = (relay.ticket.owner, relay.ticket.server, relay.ticket.user)
        self._open.setdefault(key, set()).add(relay)
        relay.tasks = [asyncio.ensure_future(pump_down_to_up(relay)), asyncio.ensure_future(pump_up_to_down(relay))]
        try:
            await asyncio.wait(relay.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in relay.tasks:
                task.cancel()
            await asyncio.gather(*relay.tasks, return_exceptions=True)
            if relay.ending is not None:
                code, message = relay.ending
            else:  # one side closed: the other gets its close code where that may be sent on
                sent = relay.up.close_code if relay.up.closed else relay.down.close_code
                code, message = (sent, b"") if sent in (1000, 1001) or (sent and 3000 <= sent < 5000) else (1011, b"")
            with contextlib.suppress(Exception):
                await relay.down.close(code=code, message=message)
            with contextlib.suppress(Exception):
                await relay.up.close()
            relays = self._open.get(key)
            if relays is not None:
                relays.discard(relay)
                if not relays:
                    self._open.pop(key, None)

    async def sweep(self) -> None:
        """Close every relay whose recipient may no longer use the server."""
        ending = [
            relay
            for (owner, server, user), relays in list(self._open.items())
            if not self.may_reach(user, owner, server)
            for relay in list(relays)
        ]
        for relay in ending:
            log.info(
                "closing a shared WebSocket of %s to %s/%s: access ended",
                relay.ticket.user,
                relay.ticket.owner,
                relay.ticket.server,
            )
        for relay in ending:
            relay.end()

    async def run_sweeps(self, interval: float = SWEEP_SECONDS) -> None:
        """Shares also end by expiry and by group changes: look every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("could not check the open shared WebSockets")

    async def close(self) -> None:
        for group in list(self._open.values()):
            for relay in list(group):
                relay.end(1001, b"The hub is shutting down.")
        await asyncio.sleep(0)
        if self._http is not None:
            await self._http.close()
