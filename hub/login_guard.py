"""Guessing passwords stays slow: failed logins counted per account and per client, with lock-outs.

An attempt is *claimed* before the password is checked, and a claim counts like a failure until
it ends, so forty guesses sent at once get no further than the limit allows, however fast the
backend answers. Once the failures of an account (or of a client address) within the window reach
the limit, further attempts are refused without checking until the lock-out ends; a success
clears the account's count.

The client address comes from ``X-Forwarded-For`` only when the request came from a configured
proxy (Traefik); otherwise it is the connection's own address, so nobody who reaches the hub
directly can pick an address to be counted under.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from hub.names import truncate

log = logging.getLogger(__name__)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Outcome = Literal["failed", "succeeded", "abandoned"]


class LockedOut(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"locked out for {seconds:.0f}s")
        self.seconds = seconds


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    in_flight: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures_per_account: int = 5,
        max_failures_per_client: int = 20,
        window: float = 900.0,
        lockout: float = 300.0,
    ) -> None:
        self.limits = {"user": max_failures_per_account, "addr": max_failures_per_client}
        self.window = window
        self.lockout = lockout
        self._records: dict[str, _Record] = {}

    def _record(self, key: str, now: float) -> _Record:
        record = self._records.setdefault(key, _Record())
        record.failures = [moment for moment in record.failures if now - moment < self.window]
        return record

    def _limit(self, key: str) -> int:
        return self.limits.get(key.split(":", 1)[0], self.limits["user"])

    def claim(self, *keys: str) -> Attempt:
        """Reserve one attempt for every key, or raise LockedOut (with the seconds left) for any one locked."""
        now = time.monotonic()
        for key in keys:
            record = self._record(key, now)
            if record.locked_until > now:
                raise LockedOut(record.locked_until - now)
            if len(record.failures) + record.in_flight >= self._limit(key):
                if record.in_flight:  # the limit is taken by attempts still being checked: try again shortly
                    raise LockedOut(1.0)
                record.locked_until = now + self.lockout
                raise LockedOut(self.lockout)
        for key in keys:
            self._records[key].in_flight += 1
        self._forget_old(now)
        return Attempt(self, keys)

    def _finish(self, keys: Iterable[str], outcome: Outcome) -> None:
        now = time.monotonic()
        for key in keys:
            record = self._record(key, now)
            record.in_flight = max(record.in_flight - 1, 0)
            if outcome == "abandoned":
                continue
            if outcome == "failed":
                record.failures.append(now)
                if len(record.failures) >= self._limit(key):
                    record.locked_until = now + self.lockout
                    log.warning(
                        "login locked for %gs after %d failures: %s",
                        self.lockout,
                        len(record.failures),
                        truncate(key, 80),
                    )
            elif key.startswith("user:"):
                record.failures.clear()

    def _forget_old(self, now: float) -> None:
        if len(self._records) > 50_000:
            self._records = {
                key: record
                for key, record in self._records.items()
                if record.in_flight
                or record.locked_until > now
                or any(now - moment < self.window for moment in record.failures)
            }


class Attempt:
    """One claimed login attempt; end it with ``failed()`` or ``succeeded()`` (ending twice does nothing)."""

    def __init__(self, throttle: LoginThrottle, keys: tuple[str, ...]) -> None:
        self._throttle = throttle
        self._keys = keys
        self._open = True

    def failed(self) -> None:
        self._end("failed")

    def succeeded(self) -> None:
        self._end("succeeded")

    def abandoned(self) -> None:
        """The check did not happen (backend down): the attempt does not count."""
        self._end("abandoned")

    def _end(self, outcome: Outcome) -> None:
        if self._open:
            self._open = False
            self._throttle._finish(self._keys, outcome)


class TrustedProxies:
    """Addresses whose X-Forwarded-For the hub believes: IPs, networks (CIDR) or host names (resolved)."""

    REFRESH_SECONDS = 30.0

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = []
        self.hostnames: list[str] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hostnames.append(entry)
        self._resolved: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()

    async def refresh(self) -> None:
        loop = asyncio.get_running_loop()
        found = set()
        for host in self.hostnames:
            try:
                for *_, address in await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM):
                    found.add(ipaddress.ip_address(address[0]))
            except (OSError, ValueError) as exc:
                log.debug("trusted proxy %s does not resolve: %s", host, exc)
        self._resolved = found

    async def run_refresh(self) -> None:
        while self.hostnames:
            await self.refresh()
            await asyncio.sleep(self.REFRESH_SECONDS)

    def trusts(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        return ip in self._resolved or any(ip in network for network in self.networks)

    def client_address(self, request: web.Request) -> str:
        """The browser's address: the last X-Forwarded-For entry not added by a trusted proxy."""
        remote = request.remote or ""
        if not self.trusts(remote):
            return remote
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else remote
