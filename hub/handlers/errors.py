"""One place that turns errors into pages (or JSON for the API) and logs the detail for the admin."""

from __future__ import annotations

import logging

import aiohttp_jinja2
from aiohttp import web

from hub.errors import HubError
from hub.i18n import N_, gettext_for, request_context
from hub.security import Handler

log = logging.getLogger(__name__)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/hub/api/")


def error_response(request: web.Request, status: int, title: str, message: str, log_tail: str = "") -> web.Response:
    if wants_json(request):
        return web.json_response({"status": status, "message": message}, status=status)
    translate = gettext_for(request)  # the page in the reader's language (the API answers in English)
    return aiohttp_jinja2.render_template(
        "error.html",
        request,
        {
            **request_context(request),  # also on pages refused before the template context is made (CSRF)
            "status": status,
            "title": translate(title),
            "message": translate(message),
            "log_tail": log_tail,
        },
        status=status,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        level = logging.ERROR if exc.status >= 500 else logging.INFO
        log.log(level, "%s %s -> %s: %s", request.method, request.path, exc.status, exc.detail)
        return error_response(request, exc.status, exc.title, exc.user_message, getattr(exc, "log_tail", ""))
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            titles = {404: N_("Page not found"), 405: N_("Method not allowed")}
            messages = {404: N_("There is no page at this address."), 405: N_("This page cannot be used that way.")}
            return error_response(request, exc.status, titles[exc.status], messages[exc.status])
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(
            request,
            500,
            N_("Something went wrong"),
            N_("The hub hit an unexpected error. It has been logged for the administrator; please try again."),
        )
