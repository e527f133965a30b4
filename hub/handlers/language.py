"""POST /hub/language: the language picker in the page footer; the choice is kept in the ``hub-lang`` cookie."""

from __future__ import annotations

from aiohttp import web

from hub.errors import BadRequest
from hub.i18n import COOKIE, L_, LANGUAGES
from hub.keys import SETTINGS
from hub.security import safe_next_url
from hub.urls import url

routes = web.RouteTableDef()
ONE_YEAR = 365 * 24 * 3600


@routes.post("/hub/language", name="language")
async def pick_language(request: web.Request) -> web.StreamResponse:
    """Store a shipped language in the cookie and go back to the page the picker was on."""
    form = await request.post()
    language = str(form.get("lang", ""))
    if language not in LANGUAGES:
        raise BadRequest(
            L_("This hub has no language called “%(language)s”. Pick one of the list.", language=language[:20])
        )
    response = web.HTTPSeeOther(safe_next_url(str(form.get("next", "")), url(request, "home")))
    response.set_cookie(
        COOKIE,
        language,
        max_age=ONE_YEAR,
        path="/",
        samesite="Lax",
        httponly=True,
        secure=request.app[SETTINGS].hub.public_url.startswith("https://"),
    )
    raise response
