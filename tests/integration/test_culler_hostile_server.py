"""The culler asks user servers for their activity; a hostile server can neither stall nor mislead it.

Each test runs a small aiohttp server on loopback that plays one trick, and asks it the way the
culler does. A server that plays a trick gives no activity information: (None, False).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from hub.culler import jupyter_activity
from hub.models import Server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOUR_AGO = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
EARLIER = (HOUR_AGO - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
LATER = HOUR_AGO.isoformat().replace("+00:00", "Z")
BUSY_KERNELS = [{"id": "k1", "last_activity": LATER, "execution_state": "busy"}]
STATUS = {"last_activity": EARLIER, "started": EARLIER, "connections": 1, "kernels": 1}
PROMPT = 6.0
"""Seconds within which the culler must have its answer, whatever the server does."""


class FakeServer:
    """A user's server on a free loopback port; `status` and `kernels` answer the two questions."""

    def __init__(self, status: Handler, kernels: Handler) -> None:
        self.requests: list[web.Request] = []
        app = web.Application()
        app.router.add_get("/user/alice/api/status", self._count(status))
        app.router.add_get("/user/alice/api/kernels", self._count(kernels))
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        self.url = ""

    def _count(self, handler: Handler) -> Handler:
        async def counted(request: web.Request) -> web.StreamResponse:
            self.requests.append(request)
            return await handler(request)

        return counted

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"


def answer(data: object) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(data)

    return handler


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler, Handler], Awaitable[FakeServer]]]:
    started: list[FakeServer] = []

    async def make(status: Handler, kernels: Handler) -> FakeServer:
        server = FakeServer(status, kernels)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.runner.cleanup()


async def ask(server: FakeServer) -> tuple[tuple[dt.datetime | None, bool], float]:
    """Ask as the culler does (its session has a 5 s total timeout); also return how long it took."""
    row = Server(url=server.url, route_secret="route-secret", image_name="jupyterlab")
    began = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        result = await asyncio.wait_for(jupyter_activity(http, row, "alice"), 30)
    return result, time.monotonic() - began


async def test_an_honest_server_is_read(serve) -> None:
    server = await serve(answer(STATUS), answer(BUSY_KERNELS))
    (last, busy), _ = await ask(server)
    assert last == HOUR_AGO and busy
    assert all(request.headers["Authorization"] == "token route-secret" for request in server.requests)
    assert all(request.query["no_track_activity"] == "1" for request in server.requests)


async def test_a_redirect_is_not_followed(serve) -> None:
    elsewhere = await serve(answer(STATUS), answer(BUSY_KERNELS))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{elsewhere.url}{request.path}")

    server = await serve(redirect, redirect)
    (last, busy), _ = await ask(server)
    assert (last, busy) == (None, False)
    assert elsewhere.requests == []


async def test_an_endless_body_is_refused_at_once(serve) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'[{"execution_state": "busy", "pad": "')
        while True:
            await response.write(b"x" * 65536)

    server = await serve(answer(STATUS), endless)
    (last, busy), took = await ask(server)
    assert (last, busy) == (None, False)
    assert took < 2


async def test_a_slow_drip_is_cut_off(serve) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in json.dumps(BUSY_KERNELS).encode() * 1000:
            await response.write(bytes([byte]))
            await asyncio.sleep(0.5)
        return response

    server = await serve(answer(STATUS), drip)
    (last, busy), took = await ask(server)
    assert (last, busy) == (None, False)
    assert took < PROMPT


async def test_a_server_that_never_answers_is_given_up(serve) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(60)
        return web.json_response(STATUS)

    server = await serve(silent, answer(BUSY_KERNELS))
    (last, busy), took = await ask(server)
    assert (last, busy) == (None, False)
    assert took < PROMPT


async def test_huge_json_is_not_read(serve) -> None:
    many = BUSY_KERNELS * 20_000  # about 1.5 MB of busy kernels
    server = await serve(answer(STATUS), answer(many))
    (last, busy), took = await ask(server)
    assert (last, busy) == (None, False)
    assert took < 2


@pytest.mark.parametrize("depth", [20, 5000])
async def test_deeply_nested_json_is_not_parsed(serve, depth: int) -> None:
    nested = "[" * depth + json.dumps(BUSY_KERNELS[0]) + "]" * depth

    async def deep(request: web.Request) -> web.StreamResponse:
        return web.Response(text=nested, content_type="application/json")

    server = await serve(answer(STATUS), deep)
    assert (await ask(server))[0] == (None, False)


async def test_a_compressed_bomb_is_not_unpacked(serve) -> None:
    bomb = gzip.compress(b"[" + b" " * 20_000_000 + json.dumps(BUSY_KERNELS[0]).encode() + b"]")

    async def compressed(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    server = await serve(answer(STATUS), compressed)
    assert len(bomb) < 65536
    (last, busy), took = await ask(server)
    assert (last, busy) == (None, False)
    assert took < 2


async def test_activity_in_the_future_does_not_count(serve) -> None:
    future = {**STATUS, "last_activity": "9999-12-31T23:59:59Z"}
    kernels = [{"id": "k1", "last_activity": "9000-01-01T00:00:00+00:00", "execution_state": "idle"}]
    server = await serve(answer(future), answer(kernels))
    assert (await ask(server))[0] == (None, False)


async def test_answers_that_are_not_json_give_nothing(serve) -> None:
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\xff\xfe not json", content_type="application/json")

    server = await serve(answer(STATUS), garbage)
    assert (await ask(server))[0] == (None, False)
