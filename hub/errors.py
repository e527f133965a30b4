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


class HubError(Exception):
    status = 500
    title = "Something went wrong"

    def __init__(self, user_message: str, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.detail = detail or user_message


class BadRequest(HubError):
    status = 400
    title = "Bad request"


class BadUsername(BadRequest):
    title = "Unusable user name"


class UnknownImage(BadRequest):
    title = "Unknown image"


class Unauthorized(HubError):
    status = 401
    title = "Not logged in"


class Conflict(HubError):
    status = 409
    title = "Conflict"


class LimitReached(HubError):
    status = 429
    title = "The hub is full"


class Forbidden(HubError):
    status = 403
    title = "Forbidden"


class NotFound(HubError):
    status = 404
    title = "Not found"


class SpawnError(HubError):
    status = 500
    title = "Your server could not start"

    def __init__(self, user_message: str, detail: str | None = None, log_tail: str = "") -> None:
        super().__init__(user_message, detail)
        self.log_tail = log_tail


class ProxyError(HubError):
    status = 502
    title = "The proxy did not take the route"


class ServiceUnavailable(HubError):
    status = 503
    title = "Temporarily unavailable"
