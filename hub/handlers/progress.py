"""The progress of a server's start as server-sent events, in JupyterHub's format."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from hub.errors import Forbidden, NotFound
from hub.handlers.login import current_user
from hub.keys import SERVERS, SETTINGS
from hub.models import ServerState
from hub.progress import ProgressEvent

routes = web.RouteTableDef()
KEEPALIVE_SECONDS = 15.0


async def send(response: web.StreamResponse, event: ProgressEvent) -> None:
    await response.write(f"data: {json.dumps(event.as_json())}\n\n".encode())


@routes.get("/hub/api/users/{name}/server/progress", name="progress_stream")
async def progress_stream(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    name = request.match_info["name"]
    if user is None:
        raise web.HTTPUnauthorized(text='{"status": 401, "message": "Log in first."}', content_type="application/json")
    if user.name != name and not user.admin:
        raise Forbidden("You can only follow the start of your own server.")
    servers = request.app[SERVERS]
    progress = servers.progress(name)
    view = await servers.view(name)
    if progress is None:
        if view is None:
            raise NotFound("This user has no server.")
        if view.state == ServerState.RUNNING:
            url = servers.server_url(name, request.app[SETTINGS].image(view.image_name))
            final = ProgressEvent(100, "Your server is ready", ready=True, url=url)
        elif view.state == ServerState.FAILED:
            final = ProgressEvent(100, view.error or "Your server could not start.", failed=True)
        else:
            raise NotFound("This user's server is not starting.")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    if progress is None:
        await send(response, final)
        return response
    events = progress.follow().__aiter__()
    while True:
        try:
            event = await asyncio.wait_for(anext(events), KEEPALIVE_SECONDS)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            await response.write(b": keepalive\n\n")
            continue
        await send(response, event)
    return response
