"""Wiring: build the aiohttp application from validated settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session, session_middleware

from hub import __version__
from hub.activity import ActivityTracker
from hub.auth import AccessPolicy, load_authenticator
from hub.config import Settings
from hub.db import open_database
from hub.docker_spawner import DockerSpawner
from hub.first_admin import FirstAdminSetup
from hub.handlers import setup_routes
from hub.handlers.errors import error_middleware
from hub.keys import (
    ACCESS_POLICY, ACTIVITY, AUTHENTICATOR, FIRST_ADMIN, LOGIN_THROTTLE, METRICS, PROXY, SERVERS, SESSIONS, SETTINGS,
    SPAWNER, TOKENS, USERS,
)
from hub.security import LoginThrottle, csrf_middleware, csrf_token, session_storage, session_user
from hub.metrics import HubMetrics
from hub.servers import ServerManager
from hub.tokens import TokenStore
from hub.traefik import TraefikFileProxy
from hub.users import UserDirectory

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
ACTIVITY_FLUSH_SECONDS = 10.0


async def template_context(request: web.Request) -> dict[str, object]:
    session = await get_session(request)
    return {
        "current_user": session_user(session),
        "csrf": csrf_token(session),
        "version": __version__,
        "static": "/hub/static/",
    }


async def flush_once(app: web.Application) -> None:
    try:
        await app[ACTIVITY].flush()
        await app[TOKENS].flush_activity()
    except Exception:
        log.exception("could not save activity")


async def flush_periodically(app: web.Application) -> None:
    """Activity is gathered in memory (forward auth must not touch the database) and saved in batches."""
    while True:
        await asyncio.sleep(ACTIVITY_FLUSH_SECONDS)
        await flush_once(app)


async def resources(app: web.Application) -> AsyncIterator[None]:
    """Open the database and the connections to Docker and Traefik; close them on shut-down."""
    settings = app[SETTINGS]
    engine, sessions = await open_database(settings.db_url)
    app[SESSIONS] = sessions
    app[AUTHENTICATOR] = load_authenticator(settings.auth, sessions)
    spawner = DockerSpawner(settings.spawner)
    proxy = TraefikFileProxy(settings.traefik, settings.hub.reachable_url)
    app[SPAWNER] = spawner
    app[PROXY] = proxy
    servers = ServerManager(settings, sessions, spawner, proxy, app[METRICS])
    app[SERVERS] = servers
    app[TOKENS] = TokenStore(sessions)
    await app[TOKENS].load()
    app[ACTIVITY] = ActivityTracker(sessions)
    app[USERS] = UserDirectory(sessions)
    await proxy.install_hub_route()
    await servers.restore()
    if settings.auth.type == "native":
        await app[FIRST_ADMIN].prepare(sessions, settings.hub.public_url)
    log.info("hub %s ready; authenticator %s; %d images", __version__, settings.auth.type, len(settings.images))
    flusher = asyncio.create_task(flush_periodically(app), name="flush-activity")
    yield
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    await flush_once(app)
    await servers.shutdown()
    await proxy.close()
    await spawner.close()
    await engine.dispose()


def create_app(settings: Settings) -> web.Application:
    # Order matters: sessions outermost (errors and CSRF read them), errors outside CSRF so its refusal renders.
    middlewares = [session_middleware(session_storage(settings)), error_middleware, csrf_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app[SETTINGS] = settings
    app[ACCESS_POLICY] = AccessPolicy.from_settings(settings.auth)
    app[LOGIN_THROTTLE] = LoginThrottle()
    app[FIRST_ADMIN] = FirstAdminSetup()
    app[METRICS] = HubMetrics()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("hub", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[template_context],
    )
    setup_routes(app)
    app.router.add_static("/hub/static/", STATIC_DIR, name="static")
    app.cleanup_ctx.append(resources)
    return app
