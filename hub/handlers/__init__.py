"""The hub's web routes, one module per group of pages."""

from __future__ import annotations

from aiohttp import web

from hub.handlers import (
    account,
    admin,
    admin_announcements,
    admin_groups,
    admin_passwords,
    admin_roster,
    admin_signups,
    admin_usage,
    api_announcements,
    api_groups,
    api_hub,
    api_images,
    api_servers,
    api_shares,
    api_tokens,
    api_users,
    branding,
    fast_lane,
    first_admin,
    forward_auth,
    home_usage,
    language,
    login,
    operations,
    pages,
    progress,
    share_relay,
    sharing,
    signup,
    token_page,
)


def setup_routes(app: web.Application) -> None:
    for module in (
        login,
        pages,
        home_usage,  # the home page's fresh CPU and memory line, for hub/static/usage.js
        progress,
        forward_auth,
        fast_lane,  # routes for Traefik's HTTP provider
        first_admin,
        operations,
        api_users,
        api_tokens,
        api_groups,
        api_images,
        api_servers,  # one server's model, PUT/PATCH of named servers, reported activity
        api_hub,  # /info and /services
        admin,
        admin_groups,
        admin_roster,  # importing a class list, exporting users, actions on many users
        token_page,
        account,  # self-service accounts (change password, sign-up) and admins' password resets
        signup,
        admin_passwords,
        admin_signups,
        admin_usage,  # usage charts (hub/usage.py samples, hub/svg_charts.py draws)
        sharing,  # sharing a server: pages, the WebSocket relay, the REST API
        share_relay,
        api_shares,
        admin_announcements,  # announcements on every page: the panel and the REST API
        api_announcements,
        branding,  # the logo and the main colour from the configuration
        language,  # the language picker (hub/i18n.py)
    ):
        app.router.add_routes(module.routes)
