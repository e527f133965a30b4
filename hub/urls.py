"""The one way the hub builds its own addresses: from route names (templates use aiohttp-jinja2's ``url``)."""

from __future__ import annotations

from aiohttp import web


def url(request: web.Request, route: str, **parts: str) -> str:
    """The path of the named route, e.g. ``url(request, "spawn_pending", name="alice")``."""
    return str(request.app.router[route].url_for(**parts))
