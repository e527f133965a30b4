"""The hub's web routes, one module per group of pages."""

from __future__ import annotations

from aiohttp import web

from hub.handlers import (
    admin,
    api_tokens,
    api_users,
    first_admin,
    forward_auth,
    login,
    operations,
    pages,
    progress,
    token_page,
)


def setup_routes(app: web.Application) -> None:
    for module in (
        login,
        pages,
        progress,
        forward_auth,
        first_admin,
        operations,
        api_users,
        api_tokens,
        admin,
        token_page,
    ):
        app.router.add_routes(module.routes)
