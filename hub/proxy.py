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
    """/user/<name>/"""
    target: str
    """http://host:port of the user's server."""
    token: str
    """Secret the proxy adds to every request it forwards."""
    strip_prefix: bool = False


class Proxy(abc.ABC):
    @abc.abstractmethod
    async def add_route(self, route: Route) -> None: ...

    @abc.abstractmethod
    async def delete_route(self, slug: str) -> None: ...

    @abc.abstractmethod
    async def list_routes(self) -> set[str]:
        """Slugs of the users that have a route."""

    async def close(self) -> None:
        """Release connections."""
