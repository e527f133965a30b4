"""The hub's web routes, one module per group of pages."""

from __future__ import annotations

from aiohttp import web

from hub.handlers import first_admin, forward_auth, health, login, pages, progress


def setup_routes(app: web.Application) -> None:
    for module in (login, pages, progress, forward_auth, first_admin, health):
        app.router.add_routes(module.routes)
