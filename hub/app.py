"""Wiring: build the aiohttp application from validated settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session, session_middleware

from hub import __version__, i18n
from hub.accounts import SIGNAL_FILE, AccountService
from hub.activity import ActivityTracker
from hub.announcements import ANNOUNCEMENTS, AnnouncementBoard
from hub.auth import AccessPolicy, LoginMethods
from hub.auth_state import AuthStateBox
from hub.config import ConfigError, Settings
from hub.culler import IdleCuller
from hub.db import open_database
from hub.dependencies import DependencyMonitor
from hub.gpus import GPUAllocator, check_gpus, host_gpu_ids
from hub.groups import GroupService
from hub.handlers import forward_auth, setup_routes
from hub.handlers.errors import error_middleware
from hub.handlers.headers import setup_security_headers
from hub.image_prep import ImagePreparer
from hub.keys import (
    ACCESS_POLICY,
    ACCOUNTS,
    ACTIVITY,
    AUTH_STATE,
    DEPENDENCIES,
    GPUS,
    GROUPS,
    IMAGE_PREP,
    LOGIN_METHODS,
    LOGIN_THROTTLE,
    METRICS,
    PROXY,
    RECONCILER,
    SERVERS,
    SESSION_READER,
    SESSIONS,
    SETTINGS,
    SHARE_RELAYS,
    SHARE_TICKETS,
    SHARING,
    SIGNUPS,
    SPAWNER,
    TOKENS,
    TRUSTED_PROXIES,
    USERS,
)
from hub.login_guard import LoginThrottle, TrustedProxies
from hub.metrics import HubMetrics
from hub.proxy import Proxy
from hub.reconcile import Reconciler
from hub.safe_text import render_safe
from hub.security import csrf_middleware, csrf_token, session_reader, session_storage, session_user
from hub.servers import ServerManager
from hub.share_relay import RelayRegistry, TicketSigner
from hub.sharing import SharingService
from hub.signups import SignupService
from hub.spawner import Spawner
from hub.tokens import TokenStore
from hub.usage import USAGE, UsageSampler, stats_reader_for
from hub.users import UserDirectory

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
Context = Callable[[web.Application], AsyncIterator[None]]


async def template_context(request: web.Request) -> dict[str, object]:
    session = await get_session(request)
    return {
        "current_user": session_user(session, request.app[ACCOUNTS]) if ACCOUNTS in request.app else None,
        "csrf": csrf_token(session),
        "version": __version__,
        "static": "/hub/static/",
        "service_notice": request.app[DEPENDENCIES].notice if DEPENDENCIES in request.app else None,
        "sharing_enabled": request.app[SETTINGS].sharing.enabled,
        **i18n.request_context(request),  # the page's language: gettext functions, lang, the picker's choices
    }


def template_loader(settings: Settings) -> jinja2.BaseLoader:
    """The admin's template folders first (branding.template_paths), then the hub's own templates, which are
    also reachable as ``hub/<name>`` so that an override can extend the page it replaces."""
    own = jinja2.PackageLoader("hub", "templates")
    folders = [str(path) for path in settings.branding.template_paths]
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(folders)] if folders else []
    return jinja2.ChoiceLoader([*loaders, jinja2.PrefixLoader({"hub": own}), own])


async def database(app: web.Application) -> AsyncIterator[None]:
    """The database (brought up to date) and what is read from it into memory: accounts and tokens."""
    settings = app[SETTINGS]
    engine, sessions = await open_database(settings.db_url)
    app[SESSIONS] = sessions
    accounts = AccountService(sessions, settings.hub.data_dir / SIGNAL_FILE, settings.auth.primary.name)
    await accounts.load()
    tokens = TokenStore(sessions, accounts)
    await tokens.load()
    accounts.on_change(tokens.load)
    app[ACCOUNTS], app[TOKENS] = accounts, tokens
    app[USERS] = UserDirectory(sessions)
    app[ACTIVITY] = ActivityTracker(sessions)
    groups = GroupService(sessions, accounts)
    await groups.load()
    app[GROUPS] = groups
    sharing = SharingService(sessions, accounts, settings.auth, groups.groups_of, settings.sharing.enabled)
    relays = RelayRegistry(sharing.may_reach)
    sharing.on_change(relays.sweep)  # a share revoked: its recipient's open WebSockets close at once
    await sharing.load()
    app[SHARING], app[SHARE_RELAYS], app[SHARE_TICKETS] = sharing, relays, TicketSigner()
    app[SIGNUPS] = SignupService(sessions, accounts, settings)
    announcements = AnnouncementBoard(sessions)
    await announcements.load()
    app[ANNOUNCEMENTS] = announcements
    app[AUTH_STATE] = AuthStateBox(settings.auth.auth_state_key_file or settings.hub.data_dir / "auth_state_key")
    app[LOGIN_METHODS] = LoginMethods(settings, sessions)
    native = next((method.name for method in settings.auth.methods if method.type == "native"), None)
    await accounts.claim_unowned(native)
    orphans = accounts.orphans({method.name for method in settings.auth.methods})
    if orphans:
        shown = ", ".join(orphans[:10]) + (f" and {len(orphans) - 10} more" if len(orphans) > 10 else "")
        log.warning(
            "%d accounts belong to a login method this hub no longer has, so they cannot log in: %s "
            "(move them with `hub user method NAME METHOD`)",
            len(orphans),
            shown,
        )
    if settings.auth.primary.type == "native" and not accounts.any():
        log.warning(
            "this hub has no users yet: make the one-time link for the first admin with `hub setup-link` "
            "(under compose: docker compose exec hub hub setup-link)"
        )
    yield
    await app[LOGIN_METHODS].close()
    await app[ACTIVITY].flush_safely(tokens.flush_activity)
    await engine.dispose()


async def gpu_allocator(settings: Settings, spawner: Spawner) -> GPUAllocator:
    """The host's GPUs, after checking that Docker can pass them to containers (a ConfigError if an image asks
    for GPUs that Docker here cannot give). With Docker away the check waits for the next start of the hub."""
    try:
        info = await spawner.daemon_info()
    except Exception as exc:
        if any(image.asks_for_gpus for image in settings.images):
            log.warning(
                "could not ask Docker whether it can pass GPUs to containers (%s); checked at the next start",
                getattr(exc, "detail", exc),
            )
        return GPUAllocator(host_gpu_ids(settings.spawner), sharing=settings.spawner.gpu_sharing)
    return check_gpus(settings, info)


def backends(spawner: Spawner | None, proxy: Proxy | None) -> Context:
    """Docker and Traefik (or the given spawner and proxy), the server manager over them, and a first reconcile."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if spawner is None:
            from hub.docker_spawner import DockerSpawner

            made_spawner: Spawner
            if settings.spawner.backend == "swarm":  # preview: Docker Swarm services (hub/swarm_spawner.py)
                from hub.swarm_spawner import SwarmSpawner

                made_spawner = SwarmSpawner(settings.spawner)
            else:
                made_spawner = DockerSpawner(settings.spawner)
        else:
            made_spawner = spawner
        if proxy is None:
            from hub.traefik import TraefikFileProxy

            made_proxy: Proxy = TraefikFileProxy(
                settings.traefik, settings.hub.reachable_url, settings.hub.forward_auth_url
            )
        else:
            made_proxy = proxy
        app[SPAWNER], app[PROXY] = made_spawner, made_proxy
        try:
            allocator = await gpu_allocator(settings, made_spawner)
        except ConfigError:  # the hub does not start (hub serve prints it and exits with status 2)
            await made_proxy.close()
            await made_spawner.close()
            raise
        app[GPUS] = allocator
        provider = getattr(made_spawner, "images", None)
        if provider is not None:
            from hub.images import ImageProvider  # the Docker SDK: loaded only by spawners that have images

            if isinstance(provider, ImageProvider):  # a spawner that builds or pulls images (Docker's)
                app[IMAGE_PREP] = ImagePreparer(settings.images, provider, settings.spawner)
        servers = ServerManager(settings, app[SESSIONS], made_spawner, made_proxy, app[METRICS], gpus=allocator)
        servers.auth_state = app[AUTH_STATE]
        servers.groups_of = app[GROUPS].groups_of
        servers.on_server_deleted.append(app[SHARING].forget_server)
        servers.on_server_renamed += [app[SHARING].rename_server, app[ACTIVITY].rename_server]
        servers.is_shared = app[SHARING].has_shares
        app[SHARING].on_change(servers.sync_share_routes)
        await servers.load()
        monitor = DependencyMonitor(made_spawner, made_proxy, settings.lifecycle.dependency_check_interval)
        servers.dependencies = monitor
        app[SERVERS], app[DEPENDENCIES] = servers, monitor
        reconciler = Reconciler(settings, servers)
        app[RECONCILER] = reconciler
        await made_proxy.prepare()
        if await monitor.check():
            await reconciler.run_once(rewrite_routes=True)  # route files are a projection: rewrite them all
            storage_problems = getattr(made_spawner, "storage_problems", None)
            if storage_problems is not None:
                try:
                    await storage_problems()  # logs what this host cannot enforce (volume sizes), once
                except Exception as exc:  # a check that cannot run must not keep the hub from starting
                    log.warning("could not check Docker's storage limits: %s", exc)
        else:
            log.warning("starting without Docker or Traefik (it may still be starting): %s", monitor.notice)
        log.info(
            "hub %s ready; login with %s; %d images",
            __version__,
            ", ".join(f"{method.name} ({method.type})" for method in settings.auth.methods),
            len(settings.images),
        )
        yield
        try:
            await asyncio.wait_for(
                servers.shutdown(settings.lifecycle.stop_servers_on_shutdown), settings.lifecycle.shutdown_timeout
            )
        except TimeoutError:
            log.error("shut-down took longer than %gs; leaving the rest", settings.lifecycle.shutdown_timeout)
        await made_proxy.close()
        await made_spawner.close()

    return context


async def background(app: web.Application) -> AsyncIterator[None]:
    """The loops that run while the hub does; each belongs to the object whose work it is."""
    settings = app[SETTINGS]
    culler = IdleCuller(settings, app[SERVERS], app[ACTIVITY])
    loops = {
        "flush-activity": app[ACTIVITY].run_flush(app[TOKENS].flush_activity),
        "reconcile": app[RECONCILER].run_periodically(),
        "dependencies": app[DEPENDENCIES].run(),
        "account-sync": app[ACCOUNTS].run_sync(),
        "trusted-proxies": app[TRUSTED_PROXIES].run_refresh(),
        "share-sweeps": app[SHARE_RELAYS].run_sweeps(),
    }
    if culler.enabled:
        loops["cull"] = culler.run_periodically()
    if IMAGE_PREP in app and app[IMAGE_PREP].enabled:
        monitor = app[DEPENDENCIES]
        loops["prepare-images"] = app[IMAGE_PREP].run(lambda: monitor.docker_ok)
    if settings.usage.enabled:
        usage = UsageSampler(settings.usage, app[SESSIONS], settings.image, stats_reader_for(app[SPAWNER]))
        app[USAGE] = usage
        app[SERVERS].on_spawn_finished.append(usage.record_spawn)
        loops["usage"] = usage.run()
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if USAGE in app:
        app[USAGE].close()
    await app[SHARE_RELAYS].close()


def create_app(settings: Settings, *, spawner: Spawner | None = None, proxy: Proxy | None = None) -> web.Application:
    """The hub's application; tests may hand in another spawner and proxy (tests/fakes.py)."""
    # Order matters: sessions outermost (errors and CSRF read them), errors outside CSRF so its refusal renders.
    middlewares = [session_middleware(session_storage(settings)), error_middleware, csrf_middleware]

    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app[SETTINGS] = settings
    app[SESSION_READER] = session_reader(settings)
    app[ACCESS_POLICY] = AccessPolicy.from_settings(settings.auth)
    auth = settings.auth
    app[LOGIN_THROTTLE] = LoginThrottle(
        max_failures_per_account=auth.max_failed_logins,
        max_failures_per_client=auth.max_failed_logins_per_client,
        window=auth.login_window,
        lockout=auth.lockout_seconds,
    )
    app[TRUSTED_PROXIES] = TrustedProxies(settings.hub.trusted_proxies)
    app[METRICS] = HubMetrics()
    environment = aiohttp_jinja2.setup(
        app,
        loader=template_loader(settings),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[template_context],
    )
    # Globals, not the per-request context: pages rendered outside its middleware (a CSRF refusal) have them too.
    environment.globals["branding"] = settings.branding
    environment.globals["announcements"] = lambda: app[ANNOUNCEMENTS].current() if ANNOUNCEMENTS in app else []
    environment.filters["safe_links"] = render_safe
    i18n.install(environment)  # gettext in templates; each request's context brings its language
    setup_routes(app)
    # The middlewares (aiohttp-jinja2's context one too, added above) serve the hub's pages; forward auth skips them.
    app.middlewares[:] = [forward_auth.passed_by(middleware) for middleware in app.middlewares]
    app.router.add_static("/hub/static/", STATIC_DIR, name="static")
    setup_security_headers(app)  # on every response but forward-auth's, streams and raised errors included
    app.cleanup_ctx.extend([database, backends(spawner, proxy), background])
    app.on_shutdown.append(release_fast_lane_polls)
    return app


async def release_fast_lane_polls(app: web.Application) -> None:
    """Answer Traefik's held fast-lane polls now, so that stopping the hub does not wait for them."""
    if PROXY in app:
        app[PROXY].release_polls()
