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
from hub.accounts import AccountRegistry
from hub.activity import ActivityTracker
from hub.auth import AccessPolicy, load_authenticator
from hub.config import Settings
from hub.culler import IdleCuller
from hub.db import open_database
from hub.dependencies import DependencyMonitor
from hub.docker_spawner import DockerSpawner
from hub.first_admin import FirstAdminSetup
from hub.handlers import setup_routes
from hub.handlers.errors import error_middleware
from hub.keys import (
    ACCESS_POLICY, ACCOUNTS, ACTIVITY, AUTHENTICATOR, DEPENDENCIES, FIRST_ADMIN, LOGIN_THROTTLE, METRICS, PROXY, SERVERS, SESSIONS, SETTINGS,
    SPAWNER, TOKENS, USERS,
)
from hub.security import LoginThrottle, csrf_middleware, csrf_token, session_storage, session_user
from hub.metrics import HubMetrics
from hub.reconcile import Reconciler
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
        "current_user": session_user(session, request.app[ACCOUNTS]) if ACCOUNTS in request.app else None,
        "csrf": csrf_token(session),
        "version": __version__,
        "static": "/hub/static/",
        "service_notice": request.app[DEPENDENCIES].notice if DEPENDENCIES in request.app else None,
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
    app[ACCOUNTS] = AccountRegistry(sessions)
    await app[ACCOUNTS].load()
    app[USERS] = UserDirectory(sessions, app[ACCOUNTS])
    monitor = DependencyMonitor(spawner, proxy, settings.lifecycle.dependency_check_interval)
    app[DEPENDENCIES] = monitor
    servers.dependencies = monitor
    await proxy.install_hub_route()
    reconciler = Reconciler(settings, servers)
    if await monitor.check():
        await reconciler.run_once()
    else:
        log.error("starting without Docker or Traefik: %s", monitor.notice)
    if settings.auth.type == "native":
        await app[FIRST_ADMIN].prepare(sessions, settings.hub.public_url)
    log.info("hub %s ready; authenticator %s; %d images", __version__, settings.auth.type, len(settings.images))
    culler = IdleCuller(settings, servers, app[ACTIVITY])
    tasks = [
        asyncio.create_task(flush_periodically(app), name="flush-activity"),
        asyncio.create_task(reconciler.run_periodically(), name="reconcile"),
        asyncio.create_task(monitor.run(), name="dependencies"),
    ]
    if culler.enabled:
        tasks.append(asyncio.create_task(culler.run_periodically(), name="cull"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await flush_once(app)
    try:
        await asyncio.wait_for(servers.shutdown(settings.lifecycle.stop_servers_on_shutdown),
                               settings.lifecycle.shutdown_timeout)
    except asyncio.TimeoutError:
        log.error("shut-down took longer than %gs; leaving the rest", settings.lifecycle.shutdown_timeout)
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
