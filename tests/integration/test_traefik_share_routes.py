"""The routers of a server's route file, against the real Traefik: plain HTTP for the owner and people the
server is shared with, WebSockets straight to the server for the owner only, and WebSockets that carry the
share marker cookie to the hub's relay with the ticket forward auth signed (never one the client sent)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hub import names
from hub.config import TraefikSection
from hub.proxy import Route
from hub.traefik import TraefikFileProxy
from tests.fixtures.traefik import TraefikProcess
from tests.integration.test_traefik_proxy import serve

pytestmark = [pytest.mark.traefik]
SECRET = secrets.token_urlsafe(12)


def who(request: web.Request) -> str:
    """The stand-in hub's idea of the visitor: the ``who`` cookie."""
    return request.cookies.get("who", "")


async def backend(request: web.Request) -> web.StreamResponse:
    """alice's server: reports what reached it, over HTTP or a WebSocket."""
    seen = {"at": "server", "path": request.path, "authorization": request.headers.get("Authorization", "")}
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response(seen)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(json.dumps(seen))
    await ws.close()
    return ws


def stand_in_hub(asked: list[str]) -> web.Application:
    """Forward auth as the hub decides it (alice owns, bob holds a share), and a relay that reports."""

    async def any_mode(request: web.Request) -> web.Response:
        asked.append(request.path)
        if who(request) not in ("alice", "bob"):
            return web.Response(status=401)
        return web.Response(text="ok", headers={"Authorization": f"token {SECRET}", "Cookie": ""})

    async def owner_mode(request: web.Request) -> web.Response:
        asked.append(request.path)
        if who(request) != "alice":
            return web.Response(status=403, text="owner only")
        return web.Response(text="ok", headers={"Authorization": f"token {SECRET}", "Cookie": ""})

    async def share_mode(request: web.Request) -> web.Response:
        asked.append(request.path)
        if who(request) != "bob":
            return web.Response(status=403, text="no share")
        return web.Response(text="ok", headers={"X-Share-Ticket": "signed-for-bob"})

    async def relay(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        report = {
            "at": "relay",
            "path": request.path,
            "ticket": request.headers.get("X-Share-Ticket", ""),
            "authorization": request.headers.get("Authorization", ""),
        }
        await ws.send_str(json.dumps(report))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/hub/forward-auth/{tail:.*}", any_mode)
    app.router.add_get("/hub/forward-auth-ws/{tail:.*}", owner_mode)
    app.router.add_get("/hub/forward-auth-share/{tail:.*}", share_mode)
    app.router.add_get("/hub/share-relay/{tail:.*}", relay)
    return app


@pytest.fixture
async def routed(traefik: TraefikProcess) -> AsyncIterator[tuple[str, list[str]]]:
    """alice's default server and her server ``lab`` routed through the real Traefik to the stand-ins."""
    asked: list[str] = []
    server_app = web.Application()
    server_app.router.add_route("*", "/{tail:.*}", backend)
    server_runner, server_url = await serve(server_app)
    hub_runner, hub_url = await serve(stand_in_hub(asked))
    settings = TraefikSection(dynamic_dir=traefik.dynamic_dir, api_url=traefik.api_url, route_timeout=10)
    proxy = TraefikFileProxy(settings, hub_url)
    for server in ("", "work"):
        slug = names.server_slug("alice", server)
        await proxy.add_route(
            Route("alice", slug, names.server_prefix("alice", server), server_url, server_name=server, shared=True)
        )
    yield traefik.web_url, asked
    for slug in await proxy.list_routes():
        await proxy.delete_route(slug)
    await proxy.close()
    await hub_runner.cleanup()
    await server_runner.cleanup()


async def first_message(url: str, cookies: str) -> dict[str, str]:
    headers = {"Cookie": cookies, "X-Share-Ticket": "forged-by-the-client", "Authorization": "token forged"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        message = await ws.receive(timeout=10)
        return json.loads(message.data)  # type: ignore[no-any-return]


async def handshake_status(url: str, cookies: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers={"Cookie": cookies}):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_a_shared_users_websocket_without_the_marker_is_refused(routed: tuple[str, list[str]]) -> None:
    base, asked = routed
    ws_url = base.replace("http", "ws", 1) + "/user/alice/api/kernels/k/channels"
    assert await handshake_status(ws_url, "who=bob") == 403
    assert asked[-1] == "/hub/forward-auth-ws/alice"  # the owner-only middleware decided
    async with aiohttp.ClientSession() as http, http.get(f"{base}/user/alice/tree", headers={"Cookie": "who=bob"}) as r:
        assert r.status == 200 and (await r.json())["at"] == "server"  # plain HTTP is fine


async def test_the_owners_websocket_goes_straight_to_her_server(routed: tuple[str, list[str]]) -> None:
    base, _ = routed
    seen = await first_message(base.replace("http", "ws", 1) + "/user/alice/api/kernels/k/channels", "who=alice")
    assert seen == {"at": "server", "path": "/user/alice/api/kernels/k/channels", "authorization": f"token {SECRET}"}


async def test_with_the_marker_a_shared_users_websocket_goes_to_the_relay_with_a_signed_ticket(
    routed: tuple[str, list[str]],
) -> None:
    base, asked = routed
    seen = await first_message(
        base.replace("http", "ws", 1) + "/user/alice/api/kernels/k/channels", "who=bob; hubshare=1"
    )
    assert seen["at"] == "relay"
    assert seen["path"] == "/hub/share-relay/user/alice/api/kernels/k/channels"
    assert seen["ticket"] == "signed-for-bob"  # the forward-auth answer replaced what the client sent
    assert asked[-1] == "/hub/forward-auth-share/alice"
    # the marker does not open the relay to someone without a share
    assert await handshake_status(base.replace("http", "ws", 1) + "/user/alice/x", "who=carol; hubshare=1") == 403


async def test_a_named_servers_routers_win_over_the_default_servers(routed: tuple[str, list[str]]) -> None:
    base, asked = routed
    ws = base.replace("http", "ws", 1)
    seen = await first_message(f"{ws}/user/alice/work/api/kernels/k/channels", "who=bob; hubshare=1")
    assert seen["path"] == "/hub/share-relay/user/alice/work/api/kernels/k/channels"
    assert asked[-1] == "/hub/forward-auth-share/alice/work"
    assert (await first_message(f"{ws}/user/alice/work/terminals/websocket/1", "who=alice"))["at"] == "server"
    assert asked[-1] == "/hub/forward-auth-ws/alice/work"
    bob = {"Cookie": "who=bob"}
    async with aiohttp.ClientSession() as http, http.get(f"{base}/user/alice/work/", headers=bob) as r:
        assert r.status == 200
    assert asked[-1] == "/hub/forward-auth/alice/work"
