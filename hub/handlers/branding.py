"""/hub/branding/...: the logo and the main colour's stylesheet from the configuration's branding section."""

from __future__ import annotations

from aiohttp import web

from hub.branding_config import colour_css
from hub.errors import NotFound
from hub.i18n import N_
from hub.keys import SETTINGS

routes = web.RouteTableDef()
CACHE = "public, max-age=300"


@routes.get("/hub/branding/logo", name="branding_logo")
async def logo(request: web.Request) -> web.StreamResponse:
    branding = request.app[SETTINGS].branding
    if branding.logo is None:
        raise NotFound(N_("This hub has no logo."))
    if not branding.logo.is_file():
        raise NotFound(N_("The logo's file is gone."), f"branding.logo: there is no file at {branding.logo}")
    headers = {"Content-Type": branding.logo_type, "Cache-Control": CACHE}
    return web.FileResponse(branding.logo, headers=headers)


@routes.get("/hub/branding/colours.css", name="branding_colours")
async def colours(request: web.Request) -> web.StreamResponse:
    colour = request.app[SETTINGS].branding.main_colour
    body = colour_css(colour) if colour else ""
    return web.Response(text=body, content_type="text/css", headers={"Cache-Control": CACHE})
