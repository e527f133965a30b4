"""The second half of every login, whatever the method: policy, account, groups, login values, session.

A method only says who someone is (an ``Identity``). From there every method goes the same way:
the hub's allow and admin lists decide whether they may enter, the account is found or made (and
must belong to this method), groups follow the method's report when ``manage_groups`` is on, the
values chosen in ``auth_state_env`` are sealed for the user's server, and a session begins.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp_session import new_session

from hub.accounts import Account, OtherPerson, WrongMethod
from hub.auth import Authenticator, Identity, LoginRefused
from hub.auth_state import pick
from hub.i18n import L_, N_
from hub.keys import ACCESS_POLICY, ACCOUNTS, AUTH_STATE, GROUPS, LOGIN_METHODS, SETTINGS
from hub.names import truncate
from hub.security import start_session

log = logging.getLogger(__name__)


async def finish_login(request: web.Request, backend: Authenticator, identity: Identity, began: float) -> Account:
    """Let the person in (or raise LoginRefused); ``began`` is when the check started (see start_session)."""
    app = request.app
    method = backend.method
    admitted = app[ACCESS_POLICY].admit(identity, method)
    name = admitted.username
    try:
        account = await app[ACCOUNTS].ensure(
            name,
            admin=bool(admitted.admin),
            logged_in=True,
            create=backend.creates_accounts,
            valid_after=began - 0.001,
            method=method.name,
            subject=admitted.subject,
        )
    except WrongMethod as exc:
        log.warning("login of %s with %s refused: the account belongs to %s", truncate(name), method.name, exc.method)
        owner = app[SETTINGS].auth.method(exc.method or "")
        message = (
            L_(
                "The name %(name)s belongs to an account that logs in another way with %(method)s. "
                "Please use that instead.",
                name=name,
                method=owner.title,
            )
            if owner is not None
            else L_(
                "The name %(name)s belongs to an account that logs in another way. Please use that instead.", name=name
            )
        )
        raise LoginRefused(message, status=403) from None
    except OtherPerson as exc:
        log.warning("login of %s with %s refused: %s", truncate(name), method.name, exc.detail)
        raise LoginRefused(exc.user_message) from None
    if account is None:  # deleted while the password was being checked, or a method that makes no accounts
        raise LoginRefused(N_("Invalid user name or password."))
    if method.manage_groups and admitted.groups is not None:
        await app[GROUPS].sync_user(name, admitted.groups)
    # Renewed at every login, and cleared when the method hands nothing (any more): a value taken out of
    # auth_state_env stops reaching the server at once.
    await app[ACCOUNTS].set_auth_state(name, app[AUTH_STATE].seal(pick(method.auth_state_env, admitted.auth_state)))
    start_session(await new_session(request), name, account.id, issued=began)
    log.info("%s logged in with %s", name, method.name)
    return account


def password_methods(request: web.Request) -> list[Authenticator]:
    return request.app[LOGIN_METHODS].of_kind("password")


def landing(request: web.Request, account: Account, next_url: str) -> str:
    """Where the browser goes after logging in: ``next``, unless an admin reset the password (change it first)."""
    if account.password_must_change and "change_password" in request.app.router:
        return str(request.app.router["change_password"].url_for().with_query(next=next_url))
    return next_url
