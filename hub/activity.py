"""When users and their servers were last active, gathered in memory and written to the database in batches.

Forward auth calls ``touch`` on every request it lets through, so it must stay a dict write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from hub.db import Sessionmaker
from hub.models import ServerState, User, utcnow

log = logging.getLogger(__name__)


FLUSH_SECONDS = 10.0


class ActivityTracker:
    def __init__(self, sessions: Sessionmaker) -> None:
        self.sessions = sessions
        # The newest moment seen, kept after it is saved: a reader (the culler) never finds activity
        # that is neither here nor in the database yet. One entry per user who was active.
        self._users: dict[str, dt.datetime] = {}
        self._servers: dict[str, dt.datetime] = {}
        self._unsaved_users: set[str] = set()
        self._unsaved_servers: set[str] = set()

    def touch_user(self, name: str) -> None:
        self._users[name] = utcnow()
        self._unsaved_users.add(name)

    def touch_server(self, owner: str) -> None:
        now = utcnow()
        self._servers[owner] = now
        self._users[owner] = now
        self._unsaved_servers.add(owner)
        self._unsaved_users.add(owner)

    def user_latest(self, name: str) -> dt.datetime | None:
        return self._users.get(name)

    def server_latest(self, owner: str) -> dt.datetime | None:
        return self._servers.get(owner)

    async def flush(self) -> None:
        user_names, server_names = self._unsaved_users, self._unsaved_servers
        self._unsaved_users, self._unsaved_servers = set(), set()
        if not user_names and not server_names:
            return
        users = {name: self._users[name] for name in user_names if name in self._users}
        servers = {name: self._servers[name] for name in server_names if name in self._servers}
        async with self.sessions.begin() as session:
            names = set(users) | set(servers)
            rows = (await session.execute(select(User).where(User.name.in_(names)))).scalars().all()
            for user in rows:
                if user.name in users:
                    user.last_activity = users[user.name]
                if user.name in servers and user.server is not None and user.server.state == ServerState.RUNNING:
                    user.server.last_activity = servers[user.name]

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
