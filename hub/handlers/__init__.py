"""The hub's web routes, one module per group of pages."""

from __future__ import annotations

from aiohttp import web

from hub.handlers import forward_auth, login, pages, progress


def setup_routes(app: web.Application) -> None:
    for module in (login, pages, progress, forward_auth):
        app.router.add_routes(module.routes)
