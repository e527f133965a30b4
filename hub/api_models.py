"""JSON shapes of the REST API, with JupyterHub's field names and ISO 8601 timestamps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.models import ServerState
from hub.names import user_prefix
from hub.parsing import whole_number
from hub.tokens import TokenView, aware
from hub.users import UserRow

# The JupyterHub REST API level this hub speaks; clients such as jupyterhub-idle-culler look at it.
API_VERSION = "5.0.0"


def iso(moment: dt.datetime | None) -> str | None:
    moment = aware(moment)
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def latest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [moment for moment in (aware(moment) for moment in moments) if moment is not None]
    return max(present) if present else None


def pending_of(row: UserRow, spawning: bool) -> str | None:
    if spawning or row.state == ServerState.STARTING:
        return "spawn"
    if row.state == ServerState.STOPPING:
        return "stop"
    return None


def server_model(
    row: UserRow, *, spawning: bool, server_activity: dt.datetime | None, progress_url: str
) -> dict[str, Any]:
    prefix = user_prefix(row.name)
    ready = row.state == ServerState.RUNNING and not spawning
    return {
        "name": "",
        "ready": ready,
        "stopped": not ready and pending_of(row, spawning) is None,
        "pending": pending_of(row, spawning),
        "url": prefix,
        "progress_url": progress_url,
        "started": iso(row.started),
        "last_activity": iso(latest(row.server_last_activity, server_activity)),
        "state": {},
        "user_options": {"image": row.image_name} if row.image_name else {},
    }


def has_server(row: UserRow, spawning: bool) -> bool:
    return spawning or row.state in (ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING)


def user_model(
    row: UserRow,
    *,
    spawning: bool,
    user_activity: dt.datetime | None,
    server_activity: dt.datetime | None,
    progress_url: str,
    groups: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    active = has_server(row, spawning)
    ready = row.state == ServerState.RUNNING and not spawning
    return {
        "kind": "user",
        "name": row.name,
        "admin": row.admin,
        "roles": ["admin", "user"] if row.admin else ["user"],
        "groups": sorted(groups),
        "server": user_prefix(row.name) if ready else None,
        "pending": pending_of(row, spawning),
        "created": iso(row.created),
        "last_activity": iso(latest(row.last_activity, user_activity, server_activity)),
        "servers": {
            "": server_model(row, spawning=spawning, server_activity=server_activity, progress_url=progress_url)
        }
        if active
        else {},
        "auth_state": None,
    }


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
