"""The progress of a server's start as server-sent events, in JupyterHub's format.

The progress page reads this stream (EventSource sends the page's cookies and Accept-Language), so each message
is in the viewer's language (the ``hub-lang`` cookie, else Accept-Language); a client that asks for no language,
as JupyterHub's API clients do, gets English."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from hub.errors import NotFound
from hub.handlers.api_auth import require_manager_of
from hub.i18n import L_, N_, Text, gettext_for
from hub.keys import SERVERS, SETTINGS
from hub.models import ServerState
from hub.names import truncate
from hub.parsing import whole_number
from hub.progress import ProgressEvent
from hub.servers import failure_text

routes = web.RouteTableDef()
KEEPALIVE_SECONDS = 15.0


async def send(
    response: web.StreamResponse, event: ProgressEvent, number: int | None = None, translate: Callable[[str], str] = str
) -> None:
    """One event, its message in the viewer's language; its number lets a reconnecting EventSource resume after
    it (Last-Event-ID)."""
    ident = f"id: {number}\n" if number is not None else ""
    data = {**event.as_json(), "message": translate(event.message)}
    await response.write(f"{ident}data: {json.dumps(data)}\n\n".encode())


@routes.get("/hub/api/users/{name}/server/progress", name="progress_stream")
@routes.get("/hub/api/users/{name}/servers/{server}/progress", name="progress_stream_named")
async def progress_stream(request: web.Request) -> web.StreamResponse:
    name, server = request.match_info["name"], request.match_info.get("server", "")
    await require_manager_of(request, name)
    servers = request.app[SERVERS]
    progress = servers.progress(name, server)
    if progress is None:  # not starting now: the stored state says how it ended (a start streams from memory)
        view = await servers.view(name, server)
        if view is None:
            raise NotFound(
                L_("This user has no server named %(server)r.", server=truncate(server))
                if server
                else N_("This user has no server.")
            )
        if view.state == ServerState.RUNNING:
            url = servers.server_url(name, request.app[SETTINGS].image(view.image_name), server)
            final = ProgressEvent(100, N_("Your server is ready"), ready=True, url=url)
        elif view.state == ServerState.FAILED:
            # the stored English reason: a fixed message (N_) is still shown in the reader's language
            text = failure_text(Text(view.error) if view.error else N_("Your server could not start."), view.error_log)
            final = ProgressEvent(100, text, failed=True)
        else:
            raise NotFound(N_("This user's server is not starting."))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    translate = gettext_for(request)
    if progress is None:
        await send(response, final, translate=translate)
        return response
    resume = whole_number(request.headers.get("Last-Event-ID"))
    number = resume + 1 if resume is not None else 0
    try:
        async for event in progress.follow(start=number, keepalive=KEEPALIVE_SECONDS):
            if event is None:
                await response.write(b": keepalive\n\n")
                continue
            await send(response, event, number, translate)
            number += 1
    except ConnectionResetError:  # the page moved on (to the server, or closed): nothing is wrong
        pass
    return response
