"""/hub/admin/import, /hub/admin/export.csv, /hub/admin/bulk: class lists in and out, and actions on many users.

Importing is upload (or paste) -> a preview of what will change -> Apply, which sends the same text back; it is
read and checked again and imported in one transaction (hub/roster_import.py). First passwords are shown once,
on the page that answers Apply, with a download link that holds the CSV in the page itself (a ``data:`` link):
the hub keeps them nowhere, and a reload of that page imports nothing twice and shows no password again.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from hub.bulk import ACTIONS, BulkOutcome, affected, delete_servers, select_users, start_all, stop_servers
from hub.errors import BadRequest
from hub.handlers.admin import flash, require_admin_user
from hub.i18n import L_, N_
from hub.image_choice import chosen_image
from hub.keys import ACCOUNTS, GROUPS, SERVERS, SESSIONS, SETTINGS, USERS
from hub.roster import RosterProblems, decode, explain, export_csv, parse_roster, passwords_csv
from hub.roster_import import apply_import, group_names, preview, roster_rows
from hub.urls import url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def login_methods(request: web.Request) -> list[tuple[str, str]]:
    return [(method.name, method.title) for method in request.app[SETTINGS].auth.methods]


def chosen_method(request: web.Request, value: object) -> tuple[str, bool]:
    """The login method new accounts belong to (the form's choice, default the first) and whether it is built in."""
    auth = request.app[SETTINGS].auth
    method = auth.method(value) if isinstance(value, str) and value else auth.primary
    if method is None:
        raise BadRequest(L_("This hub has no login method %(method)r.", method=str(value)[:32]))
    return method.name, method.type == "native"


def import_form(request: web.Request, text: str = "", problems: list[str] | None = None) -> web.StreamResponse:
    context = {"text": text, "problems": problems or [], "login_methods": login_methods(request)}
    return aiohttp_jinja2.render_template("admin_import.html", request, context, status=400 if problems else 200)


def roster_text(form: MultiDictProxy[str | bytes | bytearray | FileField]) -> str:
    """The roster from the form: the uploaded file when one was chosen, else the pasted text."""
    upload = form.get("file")
    if isinstance(upload, FileField):
        data = upload.file.read()
        if data:
            return decode(data)
    return str(form.get("roster", "")).replace("\r\n", "\n")


@routes.get("/hub/admin/import", name="admin_import")
async def import_page(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    return import_form(request)


@routes.post("/hub/admin/import", name="admin_import_preview")
async def import_preview(request: web.Request) -> web.StreamResponse:
    me = await require_admin_user(request)
    form = await request.post()
    text = ""
    try:
        text = roster_text(form)
        method, native = chosen_method(request, form.get("method"))
        plan = await preview(request.app[SESSIONS], parse_roster(text), me.name)
    except RosterProblems as exc:
        return import_form(request, text, explain(exc.problems))
    context = {"plan": plan, "text": text, "method": method, "native": native}
    return aiohttp_jinja2.render_template("admin_import_preview.html", request, context)


@routes.post("/hub/admin/import/apply", name="admin_import_apply")
async def import_apply(request: web.Request) -> web.StreamResponse:
    me = await require_admin_user(request)
    form = await request.post()
    text = str(form.get("roster", "")).replace("\r\n", "\n")
    method, native = chosen_method(request, form.get("method"))
    try:
        result = await apply_import(
            request.app[SESSIONS],
            request.app[ACCOUNTS],
            parse_roster(text),
            method=method,
            native=native,
            min_password_length=request.app[SETTINGS].auth.min_password_length,
            me=me.name,
            groups=request.app[GROUPS],
        )
    except RosterProblems as exc:  # the text was changed on its way back, or the users changed meanwhile
        return import_form(request, text, explain(exc.problems))
    log.info("%s imported a roster: %s", me.name, result.plan.summary())
    download = "data:text/csv;charset=utf-8," + quote(passwords_csv(result.passwords)) if result.passwords else ""
    context = {"plan": result.plan, "passwords": result.passwords, "download": download}
    response = aiohttp_jinja2.render_template("admin_import_done.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_response(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@routes.get("/hub/admin/export.csv", name="admin_export")
async def export_all(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    return csv_response(export_csv(await roster_rows(request.app[SESSIONS])), "users.csv")


@routes.get("/hub/admin/bulk", name="admin_bulk_page")
async def bulk_page(request: web.Request) -> web.StreamResponse:
    """Actions on every member of a group (the panel's check boxes cover the users of one page)."""
    await require_admin_user(request)
    async with request.app[SESSIONS]() as session:
        groups = await group_names(session)
    context = {"groups": groups, "images": request.app[SETTINGS].images}
    return aiohttp_jinja2.render_template("admin_bulk.html", request, context)


@routes.post("/hub/admin/bulk", name="admin_bulk")
async def bulk_action(request: web.Request) -> web.StreamResponse:
    """Start at once; export at once; stop and delete servers after a confirmation that lists who is affected."""
    await require_admin_user(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise BadRequest(N_("Choose an action: start, stop, delete servers or export."))
    chosen = [str(name) for name in form.getall("users", [])]
    names = await select_users(request.app[ACCOUNTS], request.app[GROUPS], chosen, str(form.get("group", "")))
    if action == "export":
        return csv_response(export_csv(await roster_rows(request.app[SESSIONS], names)), "users.csv")
    if action == "start":
        image = chosen_image(request.app[SETTINGS], form.get("image"))
        outcome = await start_all(request.app[SERVERS], request.app[USERS], names, image)
        message = outcome.message(
            N_("Starting %(image)s for %(names)s."),
            N_("Nothing to do for %(names)s (running already)."),
            image=image.title,
        )
        await flash(request, message, error=bool(outcome.failed))
        raise web.HTTPSeeOther(url(request, "admin"))
    rows = [await request.app[USERS].row(name) for name in names]
    context = {
        "action": action,
        "names": names,
        "affected": affected(rows, action, request.app[SERVERS].is_spawning),
        "title": N_("Stop these servers?") if action == "stop" else N_("Delete these servers?"),
    }
    return aiohttp_jinja2.render_template("admin_bulk_confirm.html", request, context)


@routes.post("/hub/admin/bulk/confirm", name="admin_bulk_apply")
async def bulk_apply(request: web.Request) -> web.StreamResponse:
    await require_admin_user(request)
    form = await request.post()
    action = str(form.get("action", ""))
    if form.get("confirm") != "yes" or action not in ("stop", "delete"):
        raise BadRequest(N_("Confirm the action on the confirmation page."))
    names = await select_users(request.app[ACCOUNTS], request.app[GROUPS], [str(n) for n in form.getall("users", [])])
    outcome: BulkOutcome
    if action == "stop":
        outcome = await stop_servers(request.app[SERVERS], request.app[USERS], names)
        await flash(request, outcome.message(N_("Stopped the servers of %(names)s.")), error=bool(outcome.failed))
    else:
        outcome = await delete_servers(request.app[SERVERS], request.app[USERS], names)
        await flash(request, outcome.message(N_("Deleted the servers of %(names)s.")), error=bool(outcome.failed))
    raise web.HTTPSeeOther(url(request, "admin"))
