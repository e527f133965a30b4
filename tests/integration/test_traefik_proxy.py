"""The Traefik file proxy against the real Traefik binary."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hub import names
from hub.config import TraefikSection
from hub.errors import ProxyError
from hub.proxy import Route
from hub.traefik import TraefikFileProxy
from tests.fixtures.traefik import TraefikProcess, free_port

pytestmark = [pytest.mark.traefik]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "headers": dict(request.headers)})


SECRET = secrets.token_urlsafe(12)


async def approve_cookie_ok(request: web.Request) -> web.Response:
    """A stand-in hub: lets in requests that carry ok=1 with the server's token, passes the other cookies on."""
    cookies = request.headers.get("Cookie", "")
    if "ok=1" not in cookies:
        return web.Response(status=401, text="log in")
    kept = "; ".join(part.strip() for part in cookies.split(";") if not part.strip().startswith("ok="))
    return web.Response(text="ok", headers={"Cookie": kept, "Authorization": f"token {SECRET}"})


@pytest.fixture
async def backends() -> AsyncIterator[tuple[str, str]]:
    backend_app = web.Application()
    backend_app.router.add_route("*", "/{tail:.*}", echo)
    auth_app = web.Application()
    auth_app.router.add_get("/hub/forward-auth/{owner}", approve_cookie_ok)
    auth_app.router.add_route("*", "/{tail:.*}", echo)
    backend_runner, backend_url = await serve(backend_app)
    auth_runner, auth_url = await serve(auth_app)
    yield backend_url, auth_url
    await backend_runner.cleanup()
    await auth_runner.cleanup()


@pytest.fixture
async def proxy(traefik: TraefikProcess, backends: tuple[str, str]) -> AsyncIterator[TraefikFileProxy]:
    settings = TraefikSection(dynamic_dir=traefik.dynamic_dir, api_url=traefik.api_url, route_timeout=10)
    instance = TraefikFileProxy(settings, backends[1])
    yield instance
    for slug in await instance.list_routes():
        await instance.delete_route(slug)
    await instance.close()


def route_for(name: str, target: str) -> Route:
    return Route(name, names.user_slug(name), names.user_prefix(name), target)


@pytest.mark.parametrize("name", ["alice", "has@example.org", "a--b", "bob.smith"])
async def test_a_route_is_live_when_add_route_returns(
    proxy: TraefikFileProxy, traefik: TraefikProcess, backends: tuple[str, str], name: str
) -> None:
    route = route_for(name, backends[0])
    await proxy.add_route(route)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{traefik.web_url}/user/{name}/tree", headers={"Cookie": "ok=1; app=7", "Authorization": "token forged"}
        ) as response:
            assert response.status == 200
            seen = await response.json()
    assert seen["path"] == f"/user/{name}/tree"
    assert seen["headers"]["Authorization"] == f"token {SECRET}"  # the hub's answer, not what the client sent
    route_file = (traefik.dynamic_dir / names.route_file(names.user_slug(name))).read_text()
    assert SECRET not in route_file
    assert seen["headers"]["Cookie"] == "app=7"
    assert names.user_slug(name) in await proxy.list_routes()


async def test_without_the_auth_cookie_the_hub_answers(
    proxy: TraefikFileProxy, traefik: TraefikProcess, backends: tuple[str, str]
) -> None:
    await proxy.add_route(route_for("alice", backends[0]))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{traefik.web_url}/user/alice/") as response:
            assert response.status == 401
            assert await response.text() == "log in"


async def test_a_deleted_route_goes_away_and_others_fall_through_to_the_hub(
    proxy: TraefikFileProxy, traefik: TraefikProcess, backends: tuple[str, str]
) -> None:
    await proxy.prepare()
    await proxy.wait_for_router("hub")
    await proxy.add_route(route_for("alice", backends[0]))
    await proxy.delete_route("alice")
    await proxy.delete_route("alice")  # already gone is fine
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(f"{traefik.web_url}/user/alice/x", headers={"Cookie": "ok=1"}) as response:
                status, text = response.status, await response.text()
            body = json.loads(text) if status == 200 else {"headers": {"Authorization": f"status {status}"}}
            if "Authorization" not in body["headers"]:
                break
            await asyncio.sleep(0.05)
    assert body["path"] == "/user/alice/x"  # answered by the hub's catch-all route, without a token
    assert "Authorization" not in body["headers"]
    assert "alice" not in await proxy.list_routes()


async def test_a_route_traefik_never_lists_is_an_error(traefik: TraefikProcess, backends: tuple[str, str]) -> None:
    settings = TraefikSection(
        dynamic_dir=traefik.dynamic_dir, api_url=f"http://127.0.0.1:{free_port()}", route_timeout=0.5
    )
    proxy = TraefikFileProxy(settings, backends[1])
    with pytest.raises(ProxyError, match="did not take the route"):
        await proxy.add_route(route_for("zoe", backends[0]))
    await proxy.delete_route("zoe")
    await proxy.close()
