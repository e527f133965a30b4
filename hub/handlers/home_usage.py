"""/hub/home/usage: the owner's "Now: CPU … · Memory …" line read fresh, as JSON for hub/static/usage.js.

The home page itself shows the last reading the hub has and never waits for Docker; its script asks here after
the page has loaded, and this waits for Docker at most hub.usage.HOME_TIMEOUT seconds.
"""

from __future__ import annotations

from aiohttp import web

from hub.handlers.login import require_user
from hub.keys import SERVERS
from hub.models import ServerState
from hub.usage import own_usage

routes = web.RouteTableDef()


@routes.get("/hub/home/usage", name="home_usage")
async def home_usage(request: web.Request) -> web.StreamResponse:
    """``{"usage": "CPU 12 % of 1 core · Memory 210 MB of 2.0 GB"}``, or ``{"usage": null}`` when the person's
    server is not running or nothing could be read in time."""
    user = await require_user(request)
    view = await request.app[SERVERS].view(user.name)
    running = view is not None and view.state == ServerState.RUNNING
    usage = await own_usage(request.app, user.name) if running else None
    return web.json_response({"usage": usage}, headers={"Cache-Control": "no-store"})
