"""Errors the hub explains to users.

HubError                 user_message for the page, detail for the admin's log
├── BadRequest           400: a form or name that cannot be used
│   ├── BadUsername
│   └── UnknownImage
├── Unauthorized         401: no valid session or token
├── Forbidden            403
├── NotFound             404
├── Conflict             409
├── LimitReached         429: too many servers running
├── SpawnError           a server could not start (image, container, timeout)
├── ProxyError           Traefik did not take a route
└── ServiceUnavailable   503: Docker or another dependency is away
"""

from __future__ import annotations

from hub.i18n import N_


class HubError(Exception):
    status = 500
    title = N_("Something went wrong")

    def __init__(self, user_message: str, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail or user_message


class BadRequest(HubError):
    status = 400
    title = N_("Bad request")


class BadUsername(BadRequest):
    title = N_("Unusable user name")


class UnknownImage(BadRequest):
    title = N_("Unknown image")


class Unauthorized(HubError):
    status = 401
    title = N_("Not logged in")


class Conflict(HubError):
    status = 409
    title = N_("Conflict")


class LimitReached(HubError):
    status = 429
    title = N_("The hub is full")


class Forbidden(HubError):
    status = 403
    title = N_("Forbidden")


class NotFound(HubError):
    status = 404
    title = N_("Not found")


class SpawnError(HubError):
    status = 500
    title = N_("Your server could not start")

    def __init__(self, user_message: str, detail: str | None = None, log_tail: str = "") -> None:
        super().__init__(user_message, detail)
        self.log_tail = log_tail


class ProxyError(HubError):
    status = 502
    title = N_("The proxy did not take the route")


class ServiceUnavailable(HubError):
    status = 503
    title = N_("Temporarily unavailable")
