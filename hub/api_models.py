"""JSON shapes of the REST API, with JupyterHub's field names and ISO 8601 timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from hub.models import ServerState
from hub.names import server_prefix, user_prefix
from hub.parsing import whole_number
from hub.tokens import TokenView, aware
from hub.users import ServerRow, UserRow

# The JupyterHub REST API level this hub speaks; clients such as jupyterhub-idle-culler look at it.
API_VERSION = "5.0.0"


def iso(moment: dt.datetime | None) -> str | None:
    moment = aware(moment)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def latest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [moment for moment in (aware(moment) for moment in moments) if moment is not None]
    return max(present) if present else None


def pending_of(row: ServerRow, spawning: bool) -> str | None:
    if spawning or row.state == ServerState.STARTING:
        return "spawn"
    if row.state == ServerState.STOPPING:
        return "stop"
    return None


def server_model(
    owner: str, row: ServerRow, *, spawning: bool, server_activity: dt.datetime | None, progress_url: str
) -> dict[str, Any]:
    ready = row.state == ServerState.RUNNING and not spawning
    return {
        "name": row.name,
        "display_name": row.name,  # JupyterHub's default; the hub keeps no other display names
        "ready": ready,
        "stopped": not ready and pending_of(row, spawning) is None,
        "pending": pending_of(row, spawning),
        "url": server_prefix(owner, row.name),
        "progress_url": progress_url,
        "started": iso(row.started),
        "last_activity": iso(latest(row.last_activity, server_activity)),
        "state": {},
        "user_options": {"image": row.image_name, **(row.user_options or {})} if row.image_name else {},
    }


def has_server(row: ServerRow, spawning: bool) -> bool:
    return spawning or row.state in (ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING)


def user_model(
    row: UserRow,
    *,
    spawning: Collection[str],
    user_activity: dt.datetime | None,
    server_activity: Callable[[str], dt.datetime | None],
    progress_url: Callable[[str], str],
    include_stopped: bool = False,
    named_server_limit: int | None = None,
    groups: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """JupyterHub's user model. ``spawning`` names the servers whose start is under way ("" the default one);
    ``servers`` holds the active ones, and with ``include_stopped`` every server the user has (as JupyterHub's
    ``?include_stopped_servers``: the default one only once it was ever started)."""
    default = row.default_server
    ready = default.state == ServerState.RUNNING and "" not in spawning
    servers = {}
    for server in (default, *row.named):
        if server.name == "" and row.image_name is None and "" not in spawning:
            continue  # never started: JupyterHub has no record of it either
        busy = server.name in spawning
        if include_stopped or has_server(server, busy):
            servers[server.name] = server_model(
                row.name,
                server,
                spawning=busy,
                server_activity=server_activity(server.name),
                progress_url=progress_url(server.name),
            )
    model: dict[str, Any] = {
        "kind": "user",
        "name": row.name,
        "admin": row.admin,
        "roles": ["admin", "user"] if row.admin else ["user"],
        "groups": sorted(groups),
        "server": user_prefix(row.name) if ready else None,
        "pending": pending_of(default, "" in spawning),
        "created": iso(row.created),
        "last_activity": iso(
            latest(
                row.last_activity, user_activity, *(server_activity(server.name) for server in (default, *row.named))
            )
        ),
        "servers": servers,
        "auth_state": None,
    }
    if named_server_limit is not None:
        model["named_server_limit"] = named_server_limit
    return model


def token_model(token: TokenView) -> dict[str, Any]:
    return {
        "kind": "api_token",
        "id": f"a{token.id}",
        "user": token.username,
        "note": token.note,
        "created": iso(token.created),
        "expires_at": iso(token.expires_at),
        "last_activity": iso(token.last_activity),
        "scopes": ["inherit"],
        "session_id": None,
        "oauth_client": "JupyterHub",
    }


def parse_token_id(raw: str) -> int | None:
    digits = raw[1:] if raw.startswith("a") else raw
    return whole_number(digits)
