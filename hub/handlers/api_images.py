"""GET /hub/api/images (admins): each offered image's preparation state, as the admin panel shows it."""

from __future__ import annotations

from aiohttp import web

from hub.handlers.api_auth import require_admin
from hub.keys import IMAGE_PREP

routes = web.RouteTableDef()


@routes.get("/hub/api/images", name="api_images")
async def list_images(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    preparer = request.app.get(IMAGE_PREP)
    statuses = preparer.statuses() if preparer is not None else []
    return web.json_response(
        {
            "prepare": preparer is not None and preparer.enabled,
            "images": [status.as_json() for status in statuses],
        }
    )
