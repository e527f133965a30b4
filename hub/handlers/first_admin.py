"""/hub/setup: create the first admin with the one-time link that `hub setup-link` prints."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import new_session

from hub.auth.native import hash_password, password_problem
from hub.errors import BadUsername, Forbidden, NotFound
from hub.first_admin import consume_setup_link, has_users, setup_link_valid
from hub.i18n import N_, gettext_for
from hub.keys import ACCOUNTS, SESSIONS, SETTINGS
from hub.names import normalize_username, validate_username
from hub.security import start_session

routes = web.RouteTableDef()
INVALID = N_("This setup link is not valid (or was used already). Make a new one with `hub setup-link`.")


async def check_link(request: web.Request, token: str) -> None:
    if await has_users(request.app[SESSIONS]):
        raise NotFound(N_("This hub is already set up. Log in instead."))
    if not await setup_link_valid(request.app[SESSIONS], token):
        raise Forbidden(INVALID)


@routes.get("/hub/setup", name="setup")
async def setup_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    await check_link(request, token)
    return aiohttp_jinja2.render_template("setup.html", request, {"token": token, "error": None, "username": ""})


@routes.post("/hub/setup")
async def setup_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", ""))
    await check_link(request, token)
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))

    def again(message: str) -> web.StreamResponse:
        context = {"token": token, "error": gettext_for(request)(message), "username": username}
        return aiohttp_jinja2.render_template("setup.html", request, context, status=400)

    try:
        name = validate_username(normalize_username(username))
    except BadUsername as exc:
        return again(exc.user_message)
    problem = password_problem(password, request.app[SETTINGS].auth.min_password_length)
    if problem is not None:
        return again(problem)
    if password != form.get("password_again"):
        return again(N_("The two passwords differ."))
    password_hash = await hash_password(password)  # before the link is used up: a busy hub keeps it valid
    if not await consume_setup_link(request.app[SESSIONS], token):
        raise Forbidden(INVALID)
    accounts = request.app[ACCOUNTS]
    await accounts.set_password_hash(name, password_hash, create=True, admin=True)
    account = accounts.get(name)
    assert account is not None
    start_session(await new_session(request), name, account.id)
    raise web.HTTPFound(request.app.router["home"].url_for())
