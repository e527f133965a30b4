"""What the hub needs from the proxy that routes /user/<name>/ to a user's server.

An implementation must provide ``add_route`` (return only once the route is live),
``delete_route`` (a missing route is not an error) and ``list_routes``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    username: str
    slug: str
    prefix: str
    """/user/<name>/ or /user/<name>/<server>/"""
    target: str
    """http://host:port of the user's server. (Its secret token is not part of the route: forward auth
    hands it to the proxy with every request it allows.)"""
    strip_prefix: bool = False
    server_name: str = ""
    """"" for the user's default server; forward auth is asked about this server of the user."""
    shared: bool = False
    """Whether the server is shared: only then does its route split WebSockets (owner direct, recipients through
    the hub's relay), so an unshared server costs Traefik one router, one middleware and one service."""


class Proxy(abc.ABC):
    @abc.abstractmethod
    async def add_route(self, route: Route) -> None: ...

    @abc.abstractmethod
    async def delete_route(self, slug: str) -> None: ...

    @abc.abstractmethod
    async def list_routes(self) -> set[str]:
        """Slugs of the servers that have a route (names.server_slug)."""

    async def prepare(self) -> None:
        """Install what the proxy needs besides users' routes (the route to the hub); called again after
        the proxy was away."""

    def fast_lane_document(self) -> bytes:
        """What the hub serves to Traefik's HTTP provider (hub/fast_lane.py); nothing for other proxies."""
        return b"{}"

    async def fast_lane_poll(self, poller: object) -> bytes:
        """The answer to a poll of Traefik's HTTP provider from ``poller`` (its connection); a proxy with a fast
        lane may hold it until something changes (hub/fast_lane.py)."""
        return self.fast_lane_document()

    def release_polls(self) -> None:
        """Answer every held fast-lane poll now (the hub is stopping)."""

    async def ping(self) -> bool:
        """Whether the proxy answers right now."""
        return True

    async def close(self) -> None:
        """Release connections."""
