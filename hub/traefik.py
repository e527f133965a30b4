"""Routes through Traefik's file provider: one YAML file per server (default or named), written atomically,
and through its HTTP provider (hub/fast_lane.py) until Traefik has read a new file.

Temporary files are written next to (not inside) the watched directory: Traefik reloads on every
file event and then waits out its throttle, so a temp file inside it would delay every route.
A file is parsed and checked before it goes live, because one broken file stops Traefik from
applying any further change for every user.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from hub import names
from hub.config import TraefikSection
from hub.errors import ProxyError
from hub.fast_lane import FastLane
from hub.i18n import N_
from hub.polling import SharedPace
from hub.proxy import Proxy, Route
from hub.share_relay import RELAY_PREFIX, SHARE_COOKIE, SHARE_TICKET_HEADER

log = logging.getLogger(__name__)

HUB_ROUTE_FILE = "hub.yaml"
API_ROUTE_FILE = "traefik-api.yaml"
API_ENTRYPOINT = "traefik"
API_USER = "hub"
ROUTE_POLL_SECONDS = 0.02
ROUTE_POLL_MOST = 0.2
"""Traefik's API is asked about a route every ROUTE_POLL_SECONDS while one route is waited for; with N waited
for at once, each is asked N times less often, at most every ROUTE_POLL_MOST (hub/polling.py)."""
ROUTE_GONE_TIMEOUT = 5.0
FILE_CHECK_EVERY = 10
"""While a router is in the fast lane, its wait asks about the file provider's copy only every 10th poll."""
SETTLE_POLL_SECONDS = 0.25
FILE_GRACE_SECONDS = 1.0
"""A new route's file is written once the fast lane's copy is live, or after this long."""
ROUTER_SUFFIXES = ("", "-ws", "-share")
"""Every router a server's route may have (render_route), after its route id."""


def router_tls(resolver: str | None, domain: str | None) -> dict[str, Any]:
    if not resolver:
        return {}
    tls: dict[str, Any] = {"certResolver": resolver}
    if domain:
        tls["domains"] = [{"main": domain}]
    return {"tls": tls}


WEBSOCKET_RULE = "HeaderRegexp(`Upgrade`, `(?i)websocket`)"
"""Any mention of websocket, so that no variant of the header slips past to the plain HTTP router."""
SHARE_COOKIE_RULE = f"HeaderRegexp(`Cookie`, `(^|;\\s*){SHARE_COOKIE}=1(;|$)`)"


def route_priorities(prefix: str, lane: bool = False) -> tuple[int, int, int]:
    """Priorities of a server's HTTP, WebSocket and shared-WebSocket routers: a longer prefix always wins (a
    named server over its owner's default one), and for one prefix the more specific rule does. The fast lane's
    copy of a route (``lane``) ranks below every file route of the same prefix, so a lane route Traefik kept
    while the hub was away can never hide the route of the server that runs now."""
    base = 20 * len(prefix) + (0 if lane else 3)
    return base + 1, base + 2, base + 3


def render_route(
    route: Route,
    *,
    hub_url: str,
    entrypoint: str,
    tls: dict[str, Any] | None = None,
    lane: bool = False,
    auth_url: str | None = None,
) -> dict[str, Any]:
    """The dynamic configuration of one server's routes, as a plain mapping.

    An unshared server has one router: forward auth lets its owner through. A shared one has three routers on
    the prefix. Plain HTTP goes to the server after forward auth lets the owner or
    someone it is shared with through (revoking a share ends that at the next request). WebSocket upgrades go
    to the server only for the owner (and admins or accounts that may open any server), because Traefik never
    closes a WebSocket it has opened. Upgrades that carry the share marker cookie go to the hub's relay
    (hub/share_relay.py), which can close a recipient's WebSockets when the share ends.
    """
    rid = names.route_id(route.slug)
    if not (route.prefix.startswith("/user/") and route.prefix.endswith("/")) or "`" in route.prefix:
        raise ValueError(f"not a user prefix: {route.prefix!r}")
    owner = quote(route.username, safe="")
    where = f"/{owner}" + (f"/{quote(route.server_name, safe='')}" if route.server_name else "")

    def auth(path: str, headers: list[str]) -> dict[str, Any]:
        # Each server's own middleware asks about that server. The hub answers an allowed request with the
        # server's token (Authorization) and the request's cookies minus its own session cookie; Traefik puts
        # both on the request. So no secret is in this file, and the server never sees its visitor's session.
        return {
            "forwardAuth": {
                "address": f"{auth_url or hub_url}{path}{where}",
                "trustForwardHeader": False,
                "maxResponseBodySize": 65536,
                "authResponseHeaders": headers,
            }
        }

    middlewares: dict[str, Any] = {
        f"{rid}-auth": auth("/hub/forward-auth", ["Authorization", "Cookie"]),
        f"{rid}-auth-ws": auth("/hub/forward-auth-ws", ["Authorization", "Cookie"]),
        f"{rid}-auth-share": auth("/hub/forward-auth-share", [SHARE_TICKET_HEADER]),
        f"{rid}-relay": {"addPrefix": {"prefix": RELAY_PREFIX}},
    }
    chain, ws_chain = [f"{rid}-auth"], [f"{rid}-auth-ws"]
    if route.strip_prefix:
        middlewares[f"{rid}-strip"] = {"stripPrefix": {"prefixes": [route.prefix.rstrip("/")]}}
        chain.append(f"{rid}-strip")
        ws_chain.append(f"{rid}-strip")
    http_priority, ws_priority, share_priority = route_priorities(route.prefix, lane)
    prefix_rule = f"PathPrefix(`{route.prefix}`)"

    def common() -> dict[str, Any]:  # fresh copies: shared objects would come out as YAML anchors
        return copy.deepcopy({"entryPoints": [entrypoint], **(tls or {})})

    service = {"loadBalancer": {"servers": [{"url": route.target}], "passHostHeader": True}}
    if not route.shared:  # nobody but the owner (and admins as allowed) passes: one router does
        own = {
            f"{rid}-auth": middlewares[f"{rid}-auth"],
            **{k: v for k, v in middlewares.items() if k.endswith("-strip")},
        }
        return {
            "http": {
                "routers": {
                    rid: {
                        "rule": prefix_rule,
                        "priority": http_priority,
                        "service": rid,
                        "middlewares": chain,
                        **common(),
                    }
                },
                "services": {rid: service},
                "middlewares": own,
            }
        }
    return {
        "http": {
            "routers": {
                rid: {"rule": prefix_rule, "priority": http_priority, "service": rid, "middlewares": chain, **common()},
                f"{rid}-ws": {
                    "rule": f"{prefix_rule} && {WEBSOCKET_RULE}",
                    "priority": ws_priority,
                    "service": rid,
                    "middlewares": ws_chain,
                    **common(),
                },
                f"{rid}-share": {
                    "rule": f"{prefix_rule} && {WEBSOCKET_RULE} && {SHARE_COOKIE_RULE}",
                    "priority": share_priority,
                    "service": f"{rid}-relay",
                    "middlewares": [f"{rid}-auth-share", f"{rid}-relay"],
                    **common(),
                },
            },
            "services": {
                rid: service,
                f"{rid}-relay": {"loadBalancer": {"servers": [{"url": hub_url}], "passHostHeader": True}},
            },
            "middlewares": middlewares,
        }
    }


def render_hub_route(*, hub_url: str, entrypoint: str, tls: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that is not a user's server goes to the hub (lowest priority)."""
    return {
        "http": {
            "routers": {
                "hub": {
                    "rule": "PathPrefix(`/`)",
                    "priority": 1,
                    "entryPoints": [entrypoint],
                    "service": "hub",
                    **(tls or {}),
                }
            },
            "services": {"hub": {"loadBalancer": {"servers": [{"url": hub_url}]}}},
        }
    }


def render_api_route(*, entrypoint: str, username: str, password: str) -> dict[str, Any]:
    """Traefik's API behind basic auth, for when user containers share a network with Traefik."""
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return {
        "http": {
            "routers": {
                "traefik-api": {
                    "rule": "PathPrefix(`/api`)",
                    "entryPoints": [entrypoint],
                    "service": "api@internal",
                    "middlewares": ["traefik-api-auth"],
                }
            },
            "middlewares": {"traefik-api-auth": {"basicAuth": {"users": [f"{username}:{{SHA}}{digest}"]}}},
        }
    }


def default_certificate() -> dict[str, Any]:
    """A self-signed certificate for Traefik's default TLS store, inline (PEM text), made at each start.

    Without one, Traefik generates a new RSA key pair each time it applies a configuration change, which was a
    third of the time a new route took to go live. It is only Traefik's fallback: plain-HTTP hubs never show it,
    and hubs with a certificate resolver serve the resolver's certificates."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub default certificate")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "stores": {
            "default": {
                "defaultCertificate": {
                    "certFile": certificate.public_bytes(serialization.Encoding.PEM).decode(),
                    "keyFile": key_pem.decode(),
                }
            }
        }
    }


SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's emitter and parser when PyYAML has them (about seven times less CPU per route than pure Python)."""


def dump_checked(config: dict[str, Any]) -> str:
    """YAML text of the config, parsed back and compared so that no broken file goes live."""
    text = yaml.dump(config, Dumper=SafeDumper, sort_keys=True, default_flow_style=False)
    if yaml.load(text, Loader=SafeLoader) != config:
        raise ValueError("the rendered route does not read back as written")
    return text


def atomic_write(path: Path, text: str, tmp_dir: Path) -> None:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".route-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o600)  # only the hub's user (and root, as which Traefik runs) reads routes
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class TraefikFileProxy(Proxy):
    def __init__(self, settings: TraefikSection, hub_url: str, auth_url: str | None = None) -> None:
        self.settings = settings
        self.hub_url = hub_url.rstrip("/")
        self.auth_url = (auth_url or hub_url).rstrip("/")
        """Where the routes' forward-auth middlewares ask (the hub's lean listener, hub/forward_auth_listener.py)."""
        self.directory = settings.dynamic_dir
        self.tmp_dir = self.directory.parent / f"{self.directory.name}.tmp"
        self._http: aiohttp.ClientSession | None = None
        self._api_password = secrets.token_urlsafe(24) if settings.protect_api else None
        self._tls = router_tls(settings.tls_cert_resolver, settings.tls_domain)
        self.fast_lane = FastLane()
        self._settler: asyncio.Task[None] | None = None
        self._writers: set[asyncio.Task[None]] = set()
        self._default_certificate: dict[str, Any] | None = None
        self._file_locks: dict[str, asyncio.Lock] = {}
        self._api_looks = SharedPace(ROUTE_POLL_SECONDS, ROUTE_POLL_MOST)  # routes waited for in Traefik's API
        self._written: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        """slug -> (the lane's copy, the file's configuration) for files written while their route is in the lane"""

    def fast_lane_document(self) -> bytes:
        return self.fast_lane.document()

    async def fast_lane_poll(self, poller: object) -> bytes:
        return await self.fast_lane.poll(poller)

    def release_polls(self) -> None:
        self.fast_lane.release()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            auth = aiohttp.BasicAuth(API_USER, self._api_password) if self._api_password else None
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2), auth=auth)
        return self._http

    async def close(self) -> None:
        tasks = [*self._writers, *([self._settler] if self._settler is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _write(self, filename: str, config: dict[str, Any]) -> None:
        text = dump_checked(config)
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(atomic_write, self.directory / filename, text, self.tmp_dir)

    async def prepare(self) -> None:
        """The catch-all route to the hub, and the password-protected API route when asked for."""
        if self._api_password:
            api = render_api_route(entrypoint=API_ENTRYPOINT, username=API_USER, password=self._api_password)
            await self._write(API_ROUTE_FILE, api)
        hub_route = render_hub_route(hub_url=self.hub_url, entrypoint=self.settings.entrypoint, tls=self._tls)
        if self._default_certificate is None:
            self._default_certificate = await asyncio.to_thread(self._kept_certificate) or await asyncio.to_thread(
                default_certificate
            )
        await self._write(HUB_ROUTE_FILE, {**hub_route, "tls": self._default_certificate})

    def _kept_certificate(self) -> dict[str, Any] | None:
        """The default certificate the hub's route file already holds (kept across restarts: making one loads
        cryptography's X.509 modules, a few MB the hub would otherwise keep for nothing)."""
        try:
            kept = yaml.load((self.directory / HUB_ROUTE_FILE).read_text(encoding="utf-8"), Loader=SafeLoader)
            pair = kept["tls"]["stores"]["default"]["defaultCertificate"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            return None
        if not all(isinstance(pair.get(key), str) and "-----BEGIN" in pair[key] for key in ("certFile", "keyFile")):
            return None
        return {"stores": {"default": {"defaultCertificate": {key: pair[key] for key in ("certFile", "keyFile")}}}}

    async def add_route(self, route: Route) -> None:
        """Make the route live and return once Traefik lists it. A new route is served in the fast lane at once
        and its file written once the lane's copy is live (so that Traefik's re-reading of every file does not
        slow it down); a route whose file changes, or with Traefik not polling the lane, is written at once."""
        slug, filename = route.slug, names.route_file(route.slug)
        config = self._render(route)
        on_disk = await self._file_text(filename)
        if on_disk == dump_checked(config) and self.fast_lane.get(slug) is None:
            await self.wait_for_router(names.route_id(slug))
            return
        if (on_disk is None or self.fast_lane.get(slug) is not None) and self.fast_lane.polled():
            live = asyncio.Event()
            self.fast_lane.put(slug, self._render(route, lane=True))
            writer = asyncio.get_running_loop().create_task(self._write_when_live(slug, config, live))
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
            if self._settler is None or self._settler.done():
                self._settler = asyncio.get_running_loop().create_task(self._settle())
            await self.wait_for_router(names.route_id(slug), live)
            return
        async with self._slug_lock(slug):  # a changed route (or no lane): its file now, and only its file
            self.fast_lane.drop(slug)
            self._written.pop(slug, None)
            await self._write(filename, config)
        await self.wait_for_router(names.route_id(slug))
        deadline = time.monotonic() + self.settings.route_timeout
        with self._api_looks.waiting():
            while not await self._file_serves(slug, config) and time.monotonic() < deadline:
                await asyncio.sleep(self._api_looks.pause())  # the changed file read, not only its router listed

    def _render(self, route: Route, lane: bool = False) -> dict[str, Any]:
        return render_route(
            route,
            hub_url=self.hub_url,
            auth_url=self.auth_url,
            entrypoint=self.settings.entrypoint,
            tls=self._tls,
            lane=lane,
        )

    async def _file_text(self, filename: str) -> str | None:
        def read() -> str | None:
            try:
                return (self.directory / filename).read_text(encoding="utf-8")
            except OSError:
                return None

        return await asyncio.to_thread(read)

    def _slug_lock(self, slug: str) -> asyncio.Lock:
        return self._file_locks.setdefault(slug, asyncio.Lock())

    async def _write_when_live(self, slug: str, config: dict[str, Any], live: asyncio.Event) -> None:
        """Write the route's file once the lane's copy is live (at most FILE_GRACE_SECONDS later), unless the
        route changed or went meanwhile."""
        lane_copy = self.fast_lane.get(slug)
        try:
            await asyncio.wait_for(live.wait(), FILE_GRACE_SECONDS)
        except TimeoutError:
            pass
        async with self._slug_lock(slug):
            if self.fast_lane.get(slug) is not lane_copy or lane_copy is None:
                return
            try:
                await self._write(names.route_file(slug), config)
            except (OSError, ValueError):
                log.exception("could not write the route file of %s (Traefik serves it from the fast lane)", slug)
                return
            self._written[slug] = (lane_copy, config)

    async def delete_route(self, slug: str) -> None:
        """Remove the route from both providers and wait (briefly) until Traefik lists its router in neither."""
        path = self.directory / names.route_file(slug)
        async with self._slug_lock(slug):
            in_lane = self.fast_lane.get(slug) is not None
            self.fast_lane.drop(slug)
            self._written.pop(slug, None)
            existed = await asyncio.to_thread(path.exists)
            await asyncio.to_thread(path.unlink, missing_ok=True)
        if not existed and not in_lane:
            return
        router = names.route_id(slug)
        deadline = time.monotonic() + ROUTE_GONE_TIMEOUT
        with self._api_looks.waiting():
            while time.monotonic() < deadline and (
                await self.router_status(router, "http") is not None or await self.router_status(router) is not None
            ):
                await asyncio.sleep(self._api_looks.pause())

    async def _settle(self) -> None:
        """Take routes out of the fast lane once Traefik serves, from the file this hub wrote, the same routers
        and targets."""
        while self.fast_lane.slugs():
            await asyncio.sleep(SETTLE_POLL_SECONDS)
            for slug in self.fast_lane.slugs():
                lane_copy, written = self._written.get(slug, (None, None))
                if lane_copy is None or written is None or self.fast_lane.get(slug) is not lane_copy:
                    continue  # its file is not written yet (or was written for an older version)
                if await self._file_serves(slug, written) and self.fast_lane.get(slug) is lane_copy:
                    async with self._slug_lock(slug):
                        if self.fast_lane.get(slug) is lane_copy:
                            self.fast_lane.drop(slug)
                            self._written.pop(slug, None)

    async def _file_serves(self, slug: str, config: dict[str, Any]) -> bool:
        """Whether Traefik's file provider has exactly this route's routers, enabled, and its services' targets."""
        routers = config["http"]["routers"]
        for name in (names.route_id(slug) + suffix for suffix in ROUTER_SUFFIXES):
            if (name in routers) != (await self.router_status(name) == "enabled"):
                return False
        for name, service in config["http"]["services"].items():
            listed = await self._api_json(f"/api/http/services/{name}@file")
            wanted = [server["url"] for server in service["loadBalancer"]["servers"]]
            served = [server.get("url") for server in (listed or {}).get("loadBalancer", {}).get("servers", [])]
            if wanted != served:
                return False
        return True

    async def _api_json(self, path: str) -> dict[str, Any] | None:
        """A document from Traefik's API, None when it is missing or Traefik does not answer."""
        try:
            async with self._session().get(f"{self.settings.api_url}{path}") as response:
                if response.status != 200:
                    return None
                document = await response.json()
                return document if isinstance(document, dict) else None
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None

    async def list_routes(self) -> set[str]:
        def scan() -> set[str]:
            if not self.directory.is_dir():
                return set()
            return {
                entry.name.removeprefix("user-").removesuffix(".yaml")
                for entry in self.directory.iterdir()
                if entry.name.startswith("user-") and entry.name.endswith(".yaml")
            }

        return await asyncio.to_thread(scan)

    async def router_status(self, router: str, provider: str = "file") -> str | None:
        """The router's status in Traefik's API ('enabled', 'disabled', ...), None when not listed."""
        document = await self._api_json(f"/api/http/routers/{router}@{provider}")
        return None if document is None else str(document.get("status"))

    async def wait_for_router(self, router: str, live: asyncio.Event | None = None) -> None:
        """Return once Traefik's API lists the router as enabled (from the fast lane or its file), so the browser
        never meets a 404."""
        deadline = time.monotonic() + self.settings.route_timeout
        status: str | None = None
        polls = 0
        with self._api_looks.waiting():
            while time.monotonic() < deadline:
                in_lane = router in self.fast_lane.routers() and self.fast_lane.polled()
                if in_lane:
                    status = await self.router_status(router, "http")
                if status != "enabled" and (not in_lane or polls % FILE_CHECK_EVERY == 0):
                    status = await self.router_status(router)
                if status == "enabled":
                    if live is not None:
                        live.set()  # its file may be written now
                    return
                polls += 1
                await asyncio.sleep(self._api_looks.pause())
        raise ProxyError(
            N_(
                "The proxy did not take the route to your server in time. Please try again; "
                "if it keeps happening, tell your administrator."
            ),
            f"traefik router {router}@file status {status!r} after {self.settings.route_timeout:g}s "
            f"(api {self.settings.api_url})",
        )

    async def ping(self) -> bool:
        try:
            async with self._session().get(f"{self.settings.api_url}/api/version") as response:
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False
