"""Security headers on every response of the hub's own pages and API.

Set when a response is prepared (not in a middleware), so that pages, JSON, redirects, errors
raised anywhere, static files and streams that start themselves all get them. Forward-auth
answers only Traefik and stays minimal: it gets none.

The pages load their scripts and styles from /hub/static/ only (no inline script, style or
event handler), so the policy allows nothing else; no page may be framed, by anyone.
"""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
SKIPPED_ROUTES = frozenset({"forward_auth"})


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: add the headers unless the handler chose its own value."""
    route = request.match_info.route if request.match_info is not None else None
    if route is not None and route.name in SKIPPED_ROUTES:
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def setup_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)


__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "add_security_headers", "setup_security_headers"]
