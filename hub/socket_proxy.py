"""``hub socket-proxy``: the Docker socket behind a door that opens only for the hub's own calls.

Under docker compose the hub can reach Docker through this proxy instead of holding the socket
(docker-compose.socket-proxy.yml). The policy is :mod:`hub.docker_policy`; this module looks up what the
policy asks to be looked up (is that container the hub's?), then moves bytes: bodies stream both ways (image
builds upload a tar context and stream their progress back), refusals are answered the way Docker answers
errors, ``{"message": ...}`` with status 403, so the hub's Docker client shows the reason. A call on one
object goes on by the full id of the object it checked, never by the caller's name for it. Answers that
could show other programs' secrets (lists, inspections) are read whole and narrowed (:mod:`hub.docker_answers`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from hub.docker_answers import narrow
from hub.docker_policy import (
    MAX_BODY,
    Decision,
    Join,
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
JOINABLE = web.AppKey("joinable", frozenset[str])
NETWORKS = web.AppKey("networks", frozenset[str])
"""Networks that are not the hub's but that its containers and services may join (``--network``: the users'
network that compose or the stack makes)."""
"""Containers that are not the hub's but that it may join to its networks (``--connect-container``)."""
ID_FIELD = {"containers": "Id", "networks": "Id", "services": "ID", "configs": "ID", "volumes": "Name"}
"""Where Docker's record of each kind holds the full id (or, for a volume, the name) calls are forwarded by."""
MAX_ANSWER = 16 * 1024 * 1024
"""The largest answer that is narrowed (lists of containers, services or tasks): read whole before it is cut."""


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


def looked_up(status: int, attrs: dict[str, Any], ident: str) -> web.Response:
    """Docker's own answer to a failed look-up (404 for a missing object), passed on."""
    message = attrs.get("message") or f"Docker could not look up {ident!r} (status {status})"
    return web.json_response({"message": message}, status=status)


def full_id_of(kind: str, attrs: dict[str, Any], ident: str) -> str:
    """The id Docker's record gives (``ID`` for a service, ``Id`` for containers and networks, a volume's name)."""
    field = ID_FIELD.get(kind, "ID")  # Swarm objects (services, configs, nodes, tasks) spell it ID
    full_id = attrs.get(field)
    if not isinstance(full_id, str) or not full_id or "/" in full_id or full_id in (".", ".."):
        raise Refused(f"Docker's record of {ident!r} has no {field}, so the call cannot be pinned to it")
    return full_id


async def check_network(session: aiohttp.ClientSession, network: str, allowed: frozenset[str]) -> web.Response | None:
    """A network a new container or service joins must be the hub's or one named with ``--network``; None when
    it is, else Docker's answer to a failed look-up."""
    status, attrs = await inspect(session, "networks", network)
    if status != 200:
        return looked_up(status, attrs, network)
    if not carries_label(attrs) and str(attrs.get("Name") or "") not in allowed:
        raise Refused(
            f"the network {network!r} is neither one this hub made nor one the socket proxy was told the hub's "
            "servers join (hub socket-proxy --network)"
        )
    return None


async def verify(
    session: aiohttp.ClientSession,
    path: str,
    decision: Decision,
    joinable: frozenset[str] = frozenset(),
    allowed_networks: frozenset[str] = frozenset(),
) -> tuple[str, bytes | None, web.Response | None]:
    """Checks against Docker's current state. Returns the path to forward (naming the object checked by its full
    id, so that a name re-pointed meanwhile reaches nothing else), a body to send instead of the caller's (or
    None), or a response that ends the call."""
    for volume in decision.plain_volumes:  # missing ones Docker makes, as plain local volumes (no options passed)
        status, attrs = await inspect(session, "volumes", volume)
        if status == 200 and not plain_volume(attrs):
            raise Refused(f"the volume {volume!r} has driver options (it can be a host folder)")
        if status == 200 and not carries_label(attrs):
            raise Refused(f"the volume {volume!r} is not one this hub made, so the hub's containers do not mount it")
    for volume in decision.labelled_volumes:
        status, attrs = await inspect(session, "volumes", volume)
        if status == 200 and not carries_label(attrs):
            raise Refused(f"the volume {volume!r} is not one this hub made, so the hub's services do not mount it")
    for network in decision.networks:
        answered = await check_network(session, network, allowed_networks)
        if answered is not None:
            return path, None, answered
    if decision.managed is None:
        return path, None, None
    kind, ident = decision.managed
    status, attrs = await inspect(session, kind, ident)
    if status != 200:
        return path, None, looked_up(status, attrs, ident)
    if not carries_label(attrs):
        raise Refused(f"{ident!r} is not a {kind[:-1]} this hub made, so it may not {decision.route}")
    if decision.no_helper and is_helper(attrs):
        raise Refused(f"{ident!r} is a backup helper, which is never started")
    if decision.helper:
        (volume,) = helper_volumes(attrs)
        status, found = await inspect(session, "volumes", volume)
        if status != 200 or not plain_volume(found):
            raise Refused(f"the backup helper's volume {volume!r} is not a plain local volume")
        if not carries_label(found):
            raise Refused(f"the volume {volume!r} is not one this hub made, so its files are not copied")
    body = None
    if decision.join is not None:
        body, answered = await joined_body(session, decision.join, joinable)
        if answered is not None:
            return path, None, answered
    full_id = full_id_of(kind, attrs, ident)
    prefix = path[: path.index(f"/{kind}/")]
    rest = path[len(prefix) + len(f"/{kind}/{ident}") :]
    return f"{prefix}/{kind}/{full_id}{rest}", body, None


async def joined_body(
    session: aiohttp.ClientSession, join: Join, joinable: frozenset[str]
) -> tuple[bytes, web.Response | None]:
    """A network connect or disconnect: the container must be the hub's, or one the operator named to the proxy
    (``--connect-container``, the hub's ``spawner.connect_containers``); it is then named by its full id."""
    status, attrs = await inspect(session, "containers", join.container)
    if status != 200:
        return b"", looked_up(status, attrs, join.container)
    full_id = full_id_of("containers", attrs, join.container)
    name = str(attrs.get("Name") or "").lstrip("/")
    named = name in joinable or any(len(entry) >= 12 and full_id.startswith(entry) for entry in joinable)
    if not (carries_label(attrs) or named):
        raise Refused(
            f"{join.container!r} is neither a container this hub made nor one the socket proxy was told the hub "
            "joins to its networks (hub socket-proxy --connect-container)"
        )
    if is_helper(attrs):
        raise Refused(f"{join.container!r} is a backup helper, which joins no network")
    return join.body(full_id), None


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
        path, new_body, answered = await verify(
            session, request.path, decision, request.app[JOINABLE], request.app[NETWORKS]
        )
    except Refused as exc:
        return refusal(request, str(exc))
    except aiohttp.ClientError as exc:
        return docker_away(exc)
    if answered is not None:
        return answered
    body = body if new_body is None else new_body
    data: Any = body or (stream(request) if request.can_read_body and not whole_body else None)
    headers = forward_headers(request)
    if decision.answer:
        headers = {key: value for key, value in headers.items() if key.lower() != "accept-encoding"}
    log.debug("%s %s (%s)", request.method, path, decision.route)
    try:
        upstream = await session.request(
            request.method,
            upstream_url(path, list(request.query.items()) if decision.query is None else list(decision.query)),
            headers=headers,
            data=data,
            allow_redirects=False,
        )
    except aiohttp.ClientConnectionError as exc:
        return docker_away(exc)
    async with upstream:
        if decision.answer and upstream.status == 200:
            return await narrowed(request, upstream, decision.answer)
        return await relay(request, upstream)


async def narrowed(request: web.Request, upstream: aiohttp.ClientResponse, kind: str) -> web.Response:
    """Docker's answer read whole and cut down to what the hub may see (hub/docker_answers.py)."""
    try:
        if (upstream.content_length or 0) > MAX_ANSWER:
            raise ValueError("the answer is too large to be checked")
        raw = bytearray()
        while chunk := await upstream.content.readany():
            raw += chunk
            if len(raw) > MAX_ANSWER:
                raise ValueError("the answer is too large to be checked")
        data = narrow(kind, json.loads(raw))
    except (ValueError, aiohttp.ClientError) as exc:  # JSONDecodeError is a ValueError
        log.warning("%s %r: Docker's answer was not passed on: %s", request.method, request.path[:200], exc)
        return web.json_response(
            {"message": f"The hub's Docker socket proxy could not read Docker's answer: {exc}"}, status=502
        )
    return web.json_response(data, status=upstream.status)


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


def create_app(docker_socket: str, joinable: Iterable[str] = (), networks: Iterable[str] = ()) -> web.Application:
    """The proxy; ``joinable``: containers that are not the hub's but that it may join to its networks;
    ``networks``: networks that are not the hub's but that its containers and services may join."""
    app = web.Application(client_max_size=MAX_BODY)
    app[JOINABLE] = frozenset(name.lstrip("/") for name in joinable if name)
    app[NETWORKS] = frozenset(name for name in networks if name)

    async def session(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.UnixConnector(path=docker_socket)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)  # builds, pulls and waits take long
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as client:
            app[SESSION] = client
            yield

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{path:.*}", handle)
    return app


def run(listen: str, docker_socket: str, joinable: Iterable[str] = (), networks: Iterable[str] = ()) -> int:
    """Serve until stopped. ``listen`` is ``HOST:PORT`` or ``unix:/path/to.sock``."""
    app = create_app(docker_socket, joinable, networks)

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
