"""``hub socket-proxy``: the Docker socket behind a door that opens only for the hub's own calls.

Under docker compose the hub can reach Docker through this proxy instead of holding the socket
(docker-compose.socket-proxy.yml). The policy is :mod:`hub.docker_policy`; this module only moves
bytes: bodies stream both ways (image builds upload a tar context and stream their progress back),
refusals are answered the way Docker answers errors, ``{"message": ...}`` with status 403, so the
hub's Docker client shows the reason.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from hub.docker_policy import (
    MAX_BODY,
    Decision,
    Refused,
    carries_label,
    decide,
    helper_volumes,
    is_helper,
    plain_volume,
    reads_body,
)

log = logging.getLogger(__name__)
DOCKER = "http://docker"  # the host name is not used on a Unix socket
CHUNK = 64 * 1024
IDLE_CHECK_SECONDS = 2.0
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
SESSION = web.AppKey("docker_session", aiohttp.ClientSession)


def refusal(request: web.Request, reason: str) -> web.Response:
    log.warning("refused %s %r: %s", request.method, request.path[:200], reason)
    return web.json_response({"message": f"The hub's Docker socket proxy refused this call: {reason}."}, status=403)


def forward_headers(request: web.Request) -> dict[str, str]:
    return {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}


def upstream_url(path: str, query: list[tuple[str, str]]) -> str:
    """The URL Docker gets: built from the parsed path and query the policy saw, not from the raw text."""
    encoded = urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
    return f"{DOCKER}{encoded}{'?' + urllib.parse.urlencode(query) if query else ''}"


async def inspect(session: aiohttp.ClientSession, kind: str, ident: str) -> tuple[int, dict[str, Any]]:
    """Docker's own record of a container, volume or network (status, JSON)."""
    suffix = "/json" if kind == "containers" else ""
    async with session.get(upstream_url(f"/{kind}/{ident}{suffix}", [])) as response:
        data = await response.json(content_type=None) if response.status < 500 else {}
        return response.status, data if isinstance(data, dict) else {}


async def verify(session: aiohttp.ClientSession, path: str, decision: Decision) -> tuple[str, web.Response | None]:
    """Checks against Docker's current state; returns the path to forward, or a response that ends the call."""
    for volume in decision.plain_volumes:
        status, attrs = await inspect(session, "volumes", volume)
        if status == 200 and not plain_volume(attrs):
            raise Refused(f"the volume {volume!r} has driver options (it can be a host folder)")
    if decision.managed is None:
        return path, None
    kind, ident = decision.managed
    status, attrs = await inspect(session, kind, ident)
    if status != 200:
        message = attrs.get("message") or f"Docker could not look up {ident!r} (status {status})"
        return path, web.json_response({"message": message}, status=status)
    if not carries_label(attrs):
        raise Refused(f"{ident!r} is not a {kind[:-1]} this hub made, so it may not {decision.route}")
    if decision.no_helper and is_helper(attrs):
        raise Refused(f"{ident!r} is a backup helper, which is never started")
    if decision.helper:
        for position, volume in enumerate(helper_volumes(attrs)):
            status, found = await inspect(session, "volumes", volume)
            if status != 200 or not plain_volume(found):
                raise Refused(f"the backup helper's volume {volume!r} is not a plain local volume")
            if position == 0 and not carries_label(found):
                raise Refused(f"the volume {volume!r} is not one this hub made, so its files are not copied")
    full_id = str(attrs.get("Id") or attrs.get("Name") or ident)
    prefix = path[: path.index(f"/{kind}/")]
    rest = path[len(prefix) + len(f"/{kind}/{ident}") :]
    return f"{prefix}/{kind}/{full_id}{rest}", None


async def stream(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


async def handle(request: web.Request) -> web.StreamResponse:
    """Check one call, then pass it to Docker and its answer back, streaming both bodies."""
    session = request.app[SESSION]
    if request.headers.get("Upgrade") or "upgrade" in request.headers.get("Connection", "").lower():
        return refusal(request, "upgraded connections (attach, exec) are not calls the hub makes")
    query = {key: request.query.getall(key) for key in request.query}
    whole_body = request.can_read_body and reads_body(request.method, request.path)
    try:
        try:
            body = await request.read() if whole_body else b""
        except web.HTTPRequestEntityTooLarge:
            raise Refused("the request body is too large") from None
        decision = decide(request.method, request.path, query, body)
        path, answered = await verify(session, request.path, decision)
    except Refused as exc:
        return refusal(request, str(exc))
    except aiohttp.ClientError as exc:
        return docker_away(exc)
    if answered is not None:
        return answered
    data: Any = body or (stream(request) if request.can_read_body and not whole_body else None)
    log.debug("%s %s (%s)", request.method, path, decision.route)
    try:
        upstream = await session.request(
            request.method,
            upstream_url(path, list(request.query.items())),
            headers=forward_headers(request),
            data=data,
            allow_redirects=False,
        )
    except aiohttp.ClientConnectionError as exc:
        return docker_away(exc)
    async with upstream:
        return await relay(request, upstream)


def docker_away(exc: Exception) -> web.Response:
    log.warning("Docker did not answer: %s", exc)
    return web.json_response({"message": f"Docker is not reachable behind the socket proxy: {exc}"}, status=502)


async def next_chunk(request: web.Request, upstream: aiohttp.ClientResponse) -> bytes:
    """Docker's next bytes, or b"" at the end. A quiet stream (Docker's events) is left once the caller has hung up:
    nothing is written to notice it by, so the connection is looked at every IDLE_CHECK_SECONDS."""
    while True:
        try:
            return await asyncio.wait_for(upstream.content.readany(), IDLE_CHECK_SECONDS)
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("the caller hung up") from None


async def relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Docker's answer, headers and body, as it comes (logs and build progress stream)."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for key, value in upstream.headers.items():
        if key.lower() not in HOP_BY_HOP:
            response.headers.add(key, value)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    try:
        while chunk := await next_chunk(request, upstream):
            await response.write(chunk)
    except (aiohttp.ClientError, ConnectionError) as exc:  # one side went away mid-stream: end this call
        log.info("%s %r ended early: %s", request.method, request.path[:200], exc)
        return response
    await response.write_eof()
    return response


def create_app(docker_socket: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.UnixConnector(path=docker_socket)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)  # builds, pulls and waits take long
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as client:
            app[SESSION] = client
            yield

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{path:.*}", handle)
    return app


def run(listen: str, docker_socket: str) -> int:
    """Serve until stopped. ``listen`` is ``HOST:PORT`` or ``unix:/path/to.sock``."""
    app = create_app(docker_socket)

    def say(text: str) -> None:
        log.info("%s", text.strip().splitlines()[0] if text.strip() else "")

    if listen.startswith("unix:"):
        web.run_app(app, path=listen[len("unix:") :], print=say, access_log=None)
    else:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--listen {listen!r}: give HOST:PORT or unix:/path/to.sock")
        web.run_app(app, host=host.strip("[]"), port=int(port), print=say, access_log=None)
    return 0


__all__ = ["create_app", "run"]
