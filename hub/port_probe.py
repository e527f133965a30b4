"""Whether a server's port takes connections yet: a bare TCP connect, far cheaper than an HTTP request.

A starting server is asked many times before it answers; with thirty starting at once, full HTTP requests
for every look were most of the hub's CPU. The hub asks over HTTP only once the port accepts a connection.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit


def host_and_port(url: str) -> tuple[str, int]:
    """The host and port of a server's address (``http://host:port``)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


@functools.lru_cache(maxsize=4096)
def literal_family(host: str) -> int | None:
    """The address family of an IP address literal, None for a name (parsed once per address: a starting server
    is probed many times a second)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def port_accepts(host: str, port: int, timeout: float) -> bool:
    """True when a TCP connection to host:port succeeds within ``timeout`` seconds (it is closed at once)."""
    loop = asyncio.get_running_loop()
    family = literal_family(host)
    addresses: list[tuple[int, Any]]
    if family is not None:
        addresses = [(family, (host, port))]
    else:  # a name (spawner.address: name): resolved each time, it may appear only once attached
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return False
        addresses = [(entry[0], entry[4]) for entry in found]
    for family_number, address in addresses:
        if await _connects(loop, family_number, address, timeout):
            return True
    return False


async def _connects(loop: asyncio.AbstractEventLoop, family: int, address: Any, timeout: float) -> bool:
    """One non-blocking connect, waited for by the loop only while it is under way: about half the CPU of
    ``loop.sock_connect`` (no exception raised for a refusal, no task)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        code = probe.connect_ex(address)
        if code == errno.EINPROGRESS:
            writable = loop.create_future()
            loop.add_writer(probe.fileno(), _settle, writable)
            try:
                async with asyncio.timeout(timeout):
                    await writable
            except TimeoutError:
                return False
            finally:
                loop.remove_writer(probe.fileno())
            code = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return code == 0


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
