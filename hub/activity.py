"""When users and their servers were last active, gathered in memory and written to the database in batches.

Forward auth calls ``touch`` on every request it lets through, so it must stay a dict write. Activity
reported through the REST API (``report``) joins the same record; no moment ever replaces a later one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import select

from hub.db import Sessionmaker
from hub.models import ServerState, User, utcnow
from hub.tokens import aware

log = logging.getLogger(__name__)


FLUSH_SECONDS = 10.0


def later(first: dt.datetime | None, second: dt.datetime) -> dt.datetime:
    """The later of two moments (the first may be missing): activity never moves backwards."""
    return second if first is None or second > first else first


class ActivityTracker:
    def __init__(self, sessions: Sessionmaker) -> None:
        self.sessions = sessions
        # The newest moment seen, kept after it is saved: a reader (the culler) never finds activity
        # that is neither here nor in the database yet. One entry per user who was active.
        self._users: dict[str, dt.datetime] = {}
        self._servers: dict[tuple[str, str], dt.datetime] = {}
        """By (owner, server name); "" is the default server."""
        self._unsaved_users: set[str] = set()
        self._unsaved_servers: set[tuple[str, str]] = set()

    def touch_user(self, name: str) -> None:
        self._users[name] = utcnow()
        self._unsaved_users.add(name)

    def touch_server(self, owner: str, server: str = "") -> None:
        now = utcnow()
        self._servers[(owner, server)] = now
        self._users[owner] = now
        self._unsaved_servers.add((owner, server))
        self._unsaved_users.add(owner)

    def report(
        self, name: str, moment: dt.datetime | None = None, servers: Mapping[str, dt.datetime] | None = None
    ) -> None:
        """Activity someone reported (JupyterHub's POST /users/{name}/activity, which jupyterhub-singleuser
        and culler scripts send): the user's own moment and each server's. Moments only ever move forward."""
        for server, when in (servers or {}).items():
            self._servers[(name, server)] = later(self._servers.get((name, server)), when)
            self._unsaved_servers.add((name, server))
            moment = later(moment, when)
        if moment is not None:
            self._users[name] = later(self._users.get(name), moment)
            self._unsaved_users.add(name)

    async def rename_server(self, owner: str, old: str, new: str) -> None:
        """A server was renamed: its last activity (which may be only here, for a stopped server) goes with it."""
        moment = self._servers.pop((owner, old), None)
        self._servers.pop((owner, new), None)  # a deleted server's of that name, if any: not this one's
        self._unsaved_servers.discard((owner, new))
        if moment is not None:
            self._servers[(owner, new)] = moment
        if (owner, old) in self._unsaved_servers:
            self._unsaved_servers.discard((owner, old))
            self._unsaved_servers.add((owner, new))

    def user_latest(self, name: str) -> dt.datetime | None:
        return self._users.get(name)

    def server_latest(self, owner: str, server: str = "") -> dt.datetime | None:
        return self._servers.get((owner, server))

    async def flush(self) -> None:
        user_names, server_names = self._unsaved_users, self._unsaved_servers
        self._unsaved_users, self._unsaved_servers = set(), set()
        if not user_names and not server_names:
            return
        users = {name: self._users[name] for name in user_names if name in self._users}
        servers = {key: self._servers[key] for key in server_names if key in self._servers}
        async with self.sessions.begin() as session:
            names = set(users) | {owner for owner, _ in servers}
            rows = (await session.execute(select(User).where(User.name.in_(names)))).scalars().all()
            for user in rows:
                if user.name in users:
                    user.last_activity = later(aware(user.last_activity), users[user.name])
                for server in user.servers:
                    moment = servers.get((user.name, server.name))
                    if moment is not None and server.state == ServerState.RUNNING:
                        server.last_activity = later(aware(server.last_activity), moment)

    async def run_flush(
        self, also: Callable[[], Awaitable[None]] | None = None, interval: float = FLUSH_SECONDS
    ) -> None:
        """Save activity every ``interval`` seconds (forward auth must not touch the database), and run ``also``
        (the tokens' last-use times) with it."""
        while True:
            await asyncio.sleep(interval)
            await self.flush_safely(also)

    async def flush_safely(self, also: Callable[[], Awaitable[None]] | None = None) -> None:
        try:
            await self.flush()
            if also is not None:
                await also()
        except Exception:
            log.exception("could not save activity")
