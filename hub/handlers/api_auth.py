"""Who is calling the REST API: a token (`Authorization: token ...` or `Bearer ...`), or the browser session."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp_session import get_session

from hub.errors import Forbidden, Unauthorized
from hub.keys import ACCOUNTS, ACTIVITY, TOKENS
from hub.request_view import RequestView
from hub.security import session_user

TOKEN_SCHEMES = ("token", "bearer")


def bearer_token(request: RequestView) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() in TOKEN_SCHEMES else None


@dataclass(frozen=True, slots=True)
class Requester:
    name: str
    admin: bool
    token_id: int | None = None

    def may_manage(self, name: str) -> bool:
        return self.admin or self.name == name


async def api_requester(request: web.Request) -> Requester:
    token = bearer_token(request)
    if token is not None:
        owner = await request.app[TOKENS].check(token)
        if owner is None:
            raise Unauthorized("The token is not valid: it is unknown, revoked or expired.")
        requester = Requester(owner.username, owner.admin, owner.token_id)
    else:
        user = session_user(await get_session(request), request.app[ACCOUNTS])
        if user is None:
            raise Unauthorized("Authentication is required: send `Authorization: token <token>`.")
        account = request.app[ACCOUNTS].get(user.name)
        if account is not None and account.password_must_change:  # a temporary password opens only its change
            raise Forbidden("Choose a new password on the hub first (your admin reset it).")
        requester = Requester(user.name, user.admin)
    request.app[ACTIVITY].touch_user(requester.name)
    return requester


async def require_manager_of(request: web.Request, name: str) -> Requester:
    requester = await api_requester(request)
    if not requester.may_manage(name):
        raise Forbidden(f"You may not act on the user {name}: only admins may act on other users.")
    return requester


async def require_admin(request: web.Request) -> Requester:
    requester = await api_requester(request)
    if not requester.admin:
        raise Forbidden("Only admins may do this.")
    return requester
