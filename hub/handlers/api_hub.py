"""REST API: the hub itself (``/info``, admins only as in JupyterHub) and its services (it has none)."""

from __future__ import annotations

import importlib.metadata
import sys

from aiohttp import web

from hub import __version__
from hub.api_models import API_VERSION
from hub.errors import NotFound
from hub.handlers.api_auth import require_admin
from hub.keys import LOGIN_METHODS, SPAWNER
from hub.names import truncate

routes = web.RouteTableDef()


def class_info(kind: type) -> dict[str, str]:
    """JupyterHub's description of a class: its dotted name, and the version of the package it comes from."""
    package = kind.__module__.partition(".")[0]
    version = getattr(sys.modules.get(package), "__version__", None)
    if not isinstance(version, str):
        try:
            version = importlib.metadata.version(package)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            version = "unknown"
    return {"class": f"{kind.__module__}.{kind.__qualname__}", "version": version}


@routes.get("/hub/api/info", name="api_info")
async def info(request: web.Request) -> web.StreamResponse:
    """The API level, Python, and the spawner and (first) login method in use; only for admins, as JupyterHub's
    ``read:hub`` scope is only theirs (it names the hub's software and paths)."""
    await require_admin(request)
    return web.json_response(
        {
            "version": API_VERSION,
            "containerhub_version": __version__,
            "python": sys.version,
            "sys_executable": sys.executable,
            "spawner": class_info(type(request.app[SPAWNER])),
            "authenticator": class_info(type(request.app[LOGIN_METHODS].primary)),
        }
    )


@routes.get("/hub/api/services", name="api_services")
async def services(request: web.Request) -> web.StreamResponse:
    """JupyterHub answers an object keyed by service name; this hub runs no JupyterHub services (its helpers,
    such as a culler, use service accounts' tokens instead), so it is empty."""
    await require_admin(request)
    return web.json_response({})


@routes.get("/hub/api/services/{name}", name="api_service")
async def service(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    raise NotFound(f"There is no service {truncate(request.match_info['name'])}: this hub runs no services.")
