"""The lean listener for forward auth: Traefik's questions without aiohttp's request machinery.

Traefik asks the hub before every request to every user's server, so this is the hub's hottest path. Through
aiohttp a question cost about 0.4 ms of the hub's CPU when asked through Traefik (request and response
objects, middlewares, the router, and a new connection for a fifth of the questions, since Traefik keeps only
two idle connections to the hub). This listener parses with httptools, builds no aiohttp request, and answers
from the same decision (``decide`` in hub/handlers/forward_auth.py), so the rules are the same on both ports.

It answers forward-auth addresses only (``/hub/forward-auth[-ws|-share]/<owner>[/<server>]``, GET or HEAD);
everything else is a 404. A question must arrive whole within HEAD_SECONDS and within MAX_HEAD_BYTES, and an
idle connection is closed after IDLE_SECONDS, so a slow or greedy client cannot hold the hub's memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

import httptools
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from hub.config import ConfigError
from hub.handlers.forward_auth import MODE_OF_PATH, Ask, decide, decide_now
from hub.handlers.headers import SECURITY_HEADERS

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
"""A question (request line, headers and any body) larger than this is refused; Traefik's are about 1 KiB."""
HEAD_SECONDS = 30.0
IDLE_SECONDS = 75.0
"""Keep-alive: Traefik's client drops its idle connections after 90 s; closing first avoids a race."""
SWEEP_SECONDS = 5.0
MAX_PENDING = 16
"""Pipelined questions parsed ahead of their answers before the connection stops reading."""
_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")
_COOKIE_PAIR = re.compile(  # the character classes of aiohttp's cookie reader
    r"""\s*(?P<name>[\w!#%&'~`><@,:/$*+\-.^|)(?}{\[\]]+)"""
    r"""(?:\s*=\s*(?P<value>"(?:[^\\"]|\\.)*"|"[^";]*|[\w!#%&'~`><@,:/$*+\-.^|)(?}{=\[\]]*))?\s*(?:\s+|;|$)"""
)
_COOKIE_NAME = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+")  # RFC 6265 token characters, as aiohttp


@dataclass(frozen=True, slots=True)
class Question:
    method: str
    url: bytes
    headers: CIMultiDictProxy[str]
    keep_alive: bool


def cookie_values(header: str) -> dict[str, str]:
    """Name to value for a Cookie header, read as aiohttp reads a request's cookies (RFC 6265 pairs, a quoted value
    may hold a semicolon and is unquoted, a repeated name keeps its last value, a malformed pair is read up to its
    semicolon; a test compares both on awkward headers). aiohttp's forms for the dates of Set-Cookie's
    ``expires`` are left out: a Cookie header carries no attributes."""
    values: dict[str, str] = {}
    at = 0
    while at < len(header):
        found = _COOKIE_PAIR.match(header, at)
        if found is not None and found.end() > at:
            name, value, at = found.group("name"), found.group("value") or "", found.end()
        else:  # not a pair: read up to the next semicolon as name=value, if it is one
            end = header.find(";", at)
            end = len(header) if end < 0 else end
            name, equals, value = header[at:end].partition("=")
            at = end + 1
            if not equals:
                continue
            name, value = name.strip(), value.strip()
        if not _COOKIE_NAME.fullmatch(name):
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _ESCAPE.sub(lambda escape: chr(int(escape[1], 8)) if escape[1] else escape[2], value[1:-1])
        values[name] = value
    return values


def ask_of(question: Question) -> Ask | None:
    """The forward-auth question at this address, or None when the address is not one."""
    path = question.url.split(b"?", 1)[0]
    try:
        parts = [unquote(part.decode("ascii"), errors="strict") for part in path.split(b"/")]
    except (UnicodeDecodeError, ValueError):
        return None
    if len(parts) not in (4, 5) or parts[0] != "" or parts[1] != "hub" or not all(parts[3:]):
        return None
    mode = MODE_OF_PATH.get(parts[2])
    if mode is None or any("/" in part for part in parts[3:]):
        return None
    server = parts[4] if len(parts) == 5 else ""
    headers = question.headers
    return Ask(parts[3], server, mode, headers, cookie_values(headers.get("Cookie", "")))


def plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


def ask_or_answer(question: Question) -> Ask | web.Response:
    """The forward-auth question, or the answer to a request that is not one (405, 404)."""
    if question.method not in ("GET", "HEAD"):
        return web.Response(status=405, text="Method Not Allowed\n", headers={"Allow": "GET, HEAD"})
    ask = ask_of(question)
    return plain(404, "Not Found\n") if ask is None else ask


def failed(question: Question) -> web.Response:
    log.exception("forward-auth failed for %s", question.url[:200].decode("ascii", "replace"))
    return plain(500, "Internal Server Error\n")


def answer_now(app: web.Application, question: Question) -> web.Response | None:
    """The answer without waiting, or None when it needs ``answer`` (a token the hub must look up first)."""
    asked = ask_or_answer(question)
    if not isinstance(asked, Ask):
        return asked
    try:
        return decide_now(app, asked)
    except web.HTTPException as refusal:
        return refusal
    except Exception:
        return failed(question)


async def answer(app: web.Application, question: Question) -> web.Response:
    asked = ask_or_answer(question)
    if not isinstance(asked, Ask):
        return asked
    try:
        return await decide(app, asked)
    except web.HTTPException as refusal:
        return refusal
    except Exception:
        return failed(question)


def serialized(response: web.Response, *, with_body: bool, close: bool) -> bytes:
    """The HTTP/1.1 bytes of an answer; a header holding a line break is refused (it would split the answer)."""
    body = response.body if isinstance(response.body, bytes) else b""
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    headers = response.headers
    if response.status >= 300:  # Traefik hands a refusal to the browser whole: the hub's page headers go with it
        headers = CIMultiDict(headers)
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
    for name, value in headers.items():
        if name.lower() not in ("content-length", "connection"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    if any("\n" in line or "\r" in line for line in lines):
        raise ValueError("a line break in an answer's header")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (body if with_body else b"")


class Connection(asyncio.Protocol):
    """One client connection: parses questions in order and answers them in order."""

    def __init__(self, listener: ForwardAuthListener) -> None:
        self.listener = listener
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque[Question] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.received = 0
        self.paused = False
        self.started: float | None = None  # when the question being read began; None between questions
        self.last_seen = self.loop.time()
        self.url = b""
        self.raw_headers: list[tuple[str, str]] = []
        self.refusal: web.Response | None = None  # for a bad question that came while earlier ones were answered

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport's
        self.listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        self.transport = None
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:  # the connection closes once the questions before the bad one are answered
            return
        self.last_seen = self.loop.time()
        if self.started is None:
            self.started = self.last_seen
        self.received += len(data)
        if self.received > MAX_HEAD_BYTES:
            self.refuse(431, "Request Header Fields Too Large\n")
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse(400, "Bad Request\n")
        except httptools.HttpParserError:
            self.refuse(400, "Bad Request\n")

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.raw_headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")))

    def on_message_complete(self) -> None:
        if self.transport is None:
            return
        if self.parser.should_upgrade():  # forward auth never upgrades: Traefik drops Upgrade and Connection
            self.refuse(400, "Bad Request\n")
            return
        method = self.parser.get_method().decode("ascii", "replace")
        headers = CIMultiDictProxy(CIMultiDict(self.raw_headers))
        question = Question(method, self.url, headers, self.parser.should_keep_alive())
        self.received = 0
        self.started = None
        if self.worker is None:  # nothing queued before it: most questions are answered here and now
            ready = answer_now(self.listener.app, question)
            if ready is not None:
                self.send(question, ready)
                return
        self.pending.append(question)
        if len(self.pending) >= MAX_PENDING and self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True
        if self.worker is None:
            self.worker = self.loop.create_task(self.answer_pending())

    # answering

    async def answer_pending(self) -> None:
        try:
            while self.pending and self.transport is not None:
                question = self.pending.popleft()
                response = await answer(self.listener.app, question)
                if self.transport is None or not self.send(question, response):
                    return
                if self.paused and len(self.pending) < MAX_PENDING and self.refusal is None:
                    self.transport.resume_reading()
                    self.paused = False
            if self.refusal is not None:
                self.close_with(self.refusal)
        except Exception:  # never leave Traefik waiting for an answer that will not come
            log.exception("forward-auth: answering failed")
            if self.transport is not None:
                self.transport.close()
        finally:
            self.worker = None

    def send(self, question: Question, response: web.Response) -> bool:
        """Write the answer; False when the connection closes after it."""
        if self.transport is None:
            return False
        close = not question.keep_alive
        try:
            data = serialized(response, with_body=question.method != "HEAD", close=close)
        except ValueError:  # a line break, or text that is not UTF-8 (echoed cookies read with surrogateescape)
            log.error("forward-auth: refused to send an answer whose headers HTTP cannot carry")
            data = serialized(plain(500, "Internal Server Error\n"), with_body=True, close=close)
        self.transport.write(data)
        self.last_seen = self.loop.time()
        if close:
            self.transport.close()
            self.transport = None  # questions that came after this one are not answered
        return not close

    def refuse(self, status: int, text: str) -> None:
        """Answer a malformed or oversized question and close the connection: after the answers to the questions
        before it, when some are still being answered."""
        if self.transport is None:
            return
        if self.worker is not None:
            self.refusal = plain(status, text)
            if not self.paused:
                self.transport.pause_reading()
                self.paused = True
            return
        self.close_with(plain(status, text))

    def close_with(self, response: web.Response) -> None:
        """Send a last answer and close the connection."""
        if self.transport is None:
            return
        self.transport.write(serialized(response, with_body=True, close=True))
        self.transport.close()
        self.transport = None

    def stale(self, now: float) -> bool:
        if self.worker is not None:
            return False
        if self.started is not None:
            return now - self.started > HEAD_SECONDS
        return now - self.last_seen > IDLE_SECONDS


class ForwardAuthListener:
    """The lean forward-auth port (``hub.forward_auth_port``), served on the hub's own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host or None, port, reuse_address=True)
        self._sweeper = loop.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.worker is not None:
                connection.worker.cancel()
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = asyncio.get_running_loop().time()
            for connection in [c for c in self.connections if c.stale(now)]:
                if connection.transport is not None:
                    connection.transport.close()


def listening(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for ``hub serve``: the lean listener, open while the hub runs."""

    async def listen(app: web.Application) -> AsyncIterator[None]:
        listener = ForwardAuthListener(app)
        try:
            await listener.start(host, port)
        except OSError as exc:
            raise ConfigError(
                f"hub.forward_auth_port: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "choose a free port, or 0 to answer forward auth on hub.bind_port"
            ) from None
        log.info("Forward auth listens on %s:%d", host, listener.port)
        try:
            yield
        finally:
            await listener.close()

    return listen


__all__ = ["ForwardAuthListener", "listening", "cookie_values", "ask_of", "serialized", "Question", "MAX_HEAD_BYTES"]
