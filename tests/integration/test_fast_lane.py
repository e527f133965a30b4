"""The fast lane (hub/fast_lane.py) against the real Traefik binary polling the hub's own handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hub import names
from hub.config import TraefikSection
from hub.handlers import fast_lane
from hub.keys import PROXY
from hub.proxy import Route
from hub.traefik import TraefikFileProxy
from tests.fixtures.traefik import TraefikProcess, free_port, start_traefik
from tests.integration.test_traefik_proxy import approve_cookie_ok, echo, serve

pytestmark = [pytest.mark.traefik]


class Lane:
    """A proxy whose fast lane a real Traefik polls, and the backends its routes lead to."""

    def __init__(self, proxy: TraefikFileProxy, traefik: TraefikProcess, backend: str) -> None:
        self.proxy, self.traefik, self.backend = proxy, traefik, backend

    def route(self, name: str) -> Route:
        return Route(name, names.user_slug(name), names.user_prefix(name), self.backend)

    def file(self, name: str) -> Path:
        return self.traefik.dynamic_dir / names.route_file(names.user_slug(name))


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("lane")


@pytest.fixture
async def lane(workdir: Path) -> AsyncIterator[Lane]:
    backend_app = web.Application()
    backend_app.router.add_route("*", "/{tail:.*}", echo)
    backend_runner, backend_url = await serve(backend_app)
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    settings = TraefikSection(dynamic_dir=workdir / "traefik" / "dynamic", route_timeout=10)
    proxy = TraefikFileProxy(settings, hub_url)
    hub_app = web.Application()
    hub_app[PROXY] = proxy
    hub_app.router.add_get("/hub/forward-auth/{owner}", approve_cookie_ok)
    hub_app.router.add_routes(fast_lane.routes)
    hub_runner = web.AppRunner(hub_app)
    await hub_runner.setup()
    await web.TCPSite(hub_runner, "127.0.0.1", port).start()
    traefik = start_traefik(workdir / "traefik", fast_lane=hub_url)
    proxy.settings = settings.model_copy(update={"api_url": traefik.api_url})
    await proxy.prepare()
    deadline = time.monotonic() + 20
    while not proxy.fast_lane.polled() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert proxy.fast_lane.polled(), "Traefik never polled the fast lane"
    yield Lane(proxy, traefik, backend_url)
    await proxy.close()
    traefik.stop()
    await hub_runner.cleanup()
    await backend_runner.cleanup()


async def get(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as response:
            return response.status, await response.text()


async def eventually(check: object, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_new_route_is_live_through_the_lane_then_moves_to_its_file(lane: Lane) -> None:
    await lane.proxy.add_route(lane.route("alice"))
    assert await lane.proxy.router_status("user-alice", "http") == "enabled"
    status, body = await get(f"{lane.traefik.web_url}/user/alice/tree", Cookie="ok=1")
    assert status == 200 and '"/user/alice/tree"' in body

    async def settled() -> bool:
        return lane.proxy.fast_lane.document() == b"{}" and lane.file("alice").exists()

    assert await eventually(settled), "the route never left the fast lane for its file"
    assert await lane.proxy.router_status("user-alice") == "enabled"
    assert await eventually(lambda: _gone(lane.proxy, "user-alice", "http"))
    status, body = await get(f"{lane.traefik.web_url}/user/alice/tree", Cookie="ok=1")
    assert status == 200 and '"/user/alice/tree"' in body  # no gap while it moved


async def _gone(proxy: TraefikFileProxy, router: str, provider: str) -> bool:
    return await proxy.router_status(router, provider) is None


async def test_a_route_deleted_before_its_file_is_written_leaves_no_file(lane: Lane) -> None:
    adding = asyncio.ensure_future(lane.proxy.add_route(lane.route("bob")))
    await eventually(lambda: _listed(lane.proxy, "user-bob", "http"), 10)
    await lane.proxy.delete_route("bob")
    adding.cancel()
    await asyncio.sleep(1.5)  # past the time the file would have been written
    assert not lane.file("bob").exists()
    assert "bob" not in await lane.proxy.list_routes()
    assert await _gone(lane.proxy, "user-bob", "http") and await _gone(lane.proxy, "user-bob", "file")


async def _listed(proxy: TraefikFileProxy, router: str, provider: str) -> bool:
    return await proxy.router_status(router, provider) is not None


async def test_an_idle_lane_is_long_polled_and_a_new_route_still_goes_live(lane: Lane) -> None:
    """Traefik polls every 50 ms; the hub holds a poll with nothing new, so an idle hub answers about one a
    second, and a route put in the lane is answered to the held poll at once."""
    answered = 0
    original = lane.proxy.fast_lane.document

    def counting() -> bytes:
        nonlocal answered
        answered += 1
        return original()

    lane.proxy.fast_lane.document = counting  # type: ignore[method-assign]
    await asyncio.sleep(3)
    assert answered <= 6, f"{answered} polls answered in 3 s while nothing changed"
    await lane.proxy.add_route(lane.route("dave"))
    status, _ = await get(f"{lane.traefik.web_url}/user/dave/tree", Cookie="ok=1")
    assert status == 200


async def test_the_lane_is_not_served_to_requests_that_came_through_traefik(lane: Lane) -> None:
    await lane.proxy.add_route(lane.route("carol"))
    status, body = await get(f"{lane.traefik.web_url}/hub/traefik-fast-lane")
    assert status == 404 and "carol" not in body
    status, body = await get(f"{lane.traefik.web_url}/hub/traefik-fast-lane", **{"X-Forwarded-For": ""})
    assert status == 404 and "carol" not in body


async def test_without_a_polling_traefik_the_file_is_written_at_once(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    backend_app = web.Application()
    backend_app.router.add_route("*", "/{tail:.*}", echo)
    backend_runner, backend_url = await serve(backend_app)
    traefik = start_traefik(workdir / "plain")
    proxy = TraefikFileProxy(
        TraefikSection(dynamic_dir=traefik.dynamic_dir, api_url=traefik.api_url, route_timeout=10),
        f"http://127.0.0.1:{free_port()}",
    )
    try:
        route = Route("dave", names.user_slug("dave"), names.user_prefix("dave"), backend_url)
        await proxy.add_route(route)
        assert (traefik.dynamic_dir / names.route_file(route.slug)).exists()
        assert await proxy.router_status("user-dave") == "enabled"
    finally:
        await proxy.close()
        traefik.stop()
        await backend_runner.cleanup()


async def test_traefik_gets_a_default_certificate_that_the_hub_keeps_across_restarts(lane: Lane) -> None:
    """Without one, Traefik makes a new RSA key on every configuration change (a third of a new route's wait)."""
    hub_file = lane.traefik.dynamic_dir / "hub.yaml"
    first = hub_file.read_text()
    assert "BEGIN CERTIFICATE" in first and "PRIVATE KEY" in first
    again = TraefikFileProxy(lane.proxy.settings, lane.proxy.hub_url)
    await again.prepare()
    await again.close()
    assert hub_file.read_text() == first
    refused = [line for line in lane.traefik.log().splitlines() if "ERR" in line and "certificate" in line.lower()]
    assert refused == []  # Traefik took it


async def test_a_lane_route_traefik_kept_never_hides_the_file_route_of_the_server_that_runs_now(lane: Lane) -> None:
    """Traefik keeps the lane's last document while the hub is away: a route left there (an old container's
    address) must rank below the route file of the server that runs now."""

    async def old_server(request: web.Request) -> web.Response:
        return web.Response(text="the old container")

    old_app = web.Application()
    old_app.router.add_route("*", "/{tail:.*}", old_server)
    old_runner, old_url = await serve(old_app)
    try:
        stale = Route("erin", names.user_slug("erin"), names.user_prefix("erin"), old_url)
        lane.proxy.fast_lane.put(stale.slug, lane.proxy._render(stale, lane=True))  # what Traefik kept
        assert await eventually(lambda: _listed(lane.proxy, "user-erin", "http"))
        fresh = TraefikFileProxy(lane.proxy.settings, lane.proxy.hub_url)  # the restarted hub: no lane polled
        await fresh.add_route(lane.route("erin"))
        await fresh.close()
        assert await lane.proxy.router_status("user-erin", "http") == "enabled"  # both are live
        for _ in range(20):
            status, body = await get(f"{lane.traefik.web_url}/user/erin/tree", Cookie="ok=1")
            assert status == 200 and '"/user/erin/tree"' in body, body
    finally:
        await old_runner.cleanup()
