"""The user directory: list, filter, sort and page users (reading only: accounts.py owns every write).

Shared by the admin panel and the REST API. Listing is one SQL query with LIMIT/OFFSET, so it
stays fast with thousands of users.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import aliased

from hub import resources
from hub.db import Sessionmaker, get_user
from hub.errors import NotFound
from hub.i18n import L_
from hub.models import Server, ServerState, User

log = logging.getLogger(__name__)

QueryT = TypeVar("QueryT", bound="Select[*tuple[Any, ...]]")
StateFilter = Literal["active", "inactive", "ready"]
SortKey = Literal["name", "admin", "state", "image", "started", "last_activity", "created"]
ACTIVE_STATES = (ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING)


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One server of a user, as lists show it."""

    name: str
    state: ServerState
    image_name: str | None
    started: dt.datetime | None
    last_activity: dt.datetime | None
    error: str | None
    user_options: dict[str, str] | None = None
    """The resources chosen at its last start (hub/resources.py); None or {} before choices existed."""

    @property
    def limits(self) -> str | None:
        """Those resources in words (``Memory 2g · 1 CPU``), for the admin panel."""
        limits = resources.limits_of(self.user_options or {})
        return limits.describe() if limits else None


def server_row_of(srv: Server) -> ServerRow:
    started = srv.started if srv.state == ServerState.RUNNING else None
    return ServerRow(
        srv.name,
        srv.state,
        srv.image_name,
        started,
        srv.last_activity,
        srv.error,
        resources.stored_options(srv.user_options),
    )


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    admin: bool
    created: dt.datetime
    last_activity: dt.datetime | None
    state: ServerState
    image_name: str | None
    started: dt.datetime | None
    server_last_activity: dt.datetime | None
    error: str | None
    named: tuple[ServerRow, ...] = ()
    """The user's named servers, by name (the fields above are the default server's)."""
    user_options: dict[str, str] | None = None
    """The default server's chosen resources."""

    @property
    def default_server(self) -> ServerRow:
        return ServerRow(
            "", self.state, self.image_name, self.started, self.server_last_activity, self.error, self.user_options
        )


@dataclass(frozen=True, slots=True)
class UserPage:
    rows: list[UserRow]
    total: int
    offset: int
    limit: int


def _any_server(*states: ServerState) -> Any:
    """Whether any of the user's servers (default or named) is in one of ``states``."""
    return exists().where(Server.user_id == User.id, Server.state.in_(states))


def _filtered(query: QueryT, name_filter: str, state: StateFilter | None) -> QueryT:
    if name_filter:
        escaped = name_filter.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(User.name.like(f"%{escaped}%", escape="\\"))
    if state == "ready":
        query = query.where(_any_server(ServerState.RUNNING))
    elif state == "active":
        query = query.where(_any_server(*ACTIVE_STATES))
    elif state == "inactive":
        query = query.where(~_any_server(*ACTIVE_STATES))
    return query


def row_of(user: User, srv: Server | None, named: list[Server] | None = None) -> UserRow:
    return UserRow(
        user.name,
        user.admin,
        user.created,
        user.last_activity,
        srv.state if srv else ServerState.STOPPED,
        srv.image_name if srv else None,
        srv.started if srv and srv.state == ServerState.RUNNING else None,
        srv.last_activity if srv else None,
        srv.error if srv else None,
        tuple(server_row_of(row) for row in sorted(named or [], key=lambda row: row.name)),
        resources.stored_options(srv.user_options) if srv else None,
    )


class UserDirectory:
    def __init__(self, sessions: Sessionmaker) -> None:
        self.sessions = sessions

    async def page(
        self,
        *,
        name_filter: str = "",
        state: StateFilter | None = None,
        sort: SortKey = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> UserPage:
        server = aliased(Server)
        columns = {
            "name": User.name,
            "admin": User.admin,
            "state": server.state,
            "image": server.image_name,
            "started": server.started,
            "last_activity": User.last_activity,
            "created": User.created,
        }
        order = columns[sort].desc() if descending else columns[sort].asc()
        default = and_(server.user_id == User.id, server.name == "")  # the columns are the default server's
        base = select(User, server).outerjoin(server, default)
        query = _filtered(base, name_filter, state).order_by(order, User.name).offset(offset).limit(limit)
        count = _filtered(select(func.count(User.id)), name_filter, state)
        async with self.sessions() as session:
            total = (await session.execute(count)).scalar_one()
            pairs = (await session.execute(query)).all()
            rows = [row_of(user, srv, [row for row in user.servers if row.name]) for user, srv in pairs]
        return UserPage(rows, total, offset, limit)

    async def row(self, name: str) -> UserRow:
        async with self.sessions() as session:
            user = await get_user(session, name)
            if user is None:
                raise NotFound(L_("There is no user %(name)s.", name=name))
            return row_of(user, user.server, [row for row in user.servers if row.name])
