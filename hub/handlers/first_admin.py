"""/hub/setup: create the first admin with the one-time link from the hub's log."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import new_session

from hub.auth.native import set_password
from hub.errors import BadUsername, Forbidden, NotFound
from hub.keys import ACCOUNTS, FIRST_ADMIN, SESSIONS
from hub.names import normalize_username, validate_username
from hub.security import start_session

routes = web.RouteTableDef()
MIN_PASSWORD = 8


def check_link(request: web.Request, token: str) -> None:
    setup = request.app[FIRST_ADMIN]
    if not setup.pending:
        raise NotFound("This hub is already set up. Log in instead.")
    if not setup.check(token):
        raise Forbidden("This setup link is not valid. Use the link printed in the hub's log.")


@routes.get("/hub/setup", name="setup")
async def setup_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    check_link(request, token)
    return aiohttp_jinja2.render_template("setup.html", request, {"token": token, "error": None, "username": ""})


@routes.post("/hub/setup")
async def setup_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", ""))
    check_link(request, token)
    username = str(form.get("username", ""))[:256]
    password = str(form.get("password", ""))

    def again(message: str) -> web.StreamResponse:
        context = {"token": token, "error": message, "username": username}
        return aiohttp_jinja2.render_template("setup.html", request, context, status=400)

    try:
        name = validate_username(normalize_username(username))
    except BadUsername as exc:
        return again(exc.user_message)
    if len(password) < MIN_PASSWORD:
        return again(f"The password must have at least {MIN_PASSWORD} characters.")
    if password != form.get("password_again"):
        return again("The two passwords differ.")
    request.app[FIRST_ADMIN].done()
    await set_password(request.app[SESSIONS], name, password, admin=True)
    request.app[ACCOUNTS].remember(name, True)
    start_session(await new_session(request), name)
    raise web.HTTPFound(request.app.router["home"].url_for())
