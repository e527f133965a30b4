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
        self._users: dict[str, dt.datetime] = {}
        self._servers: dict[str, dt.datetime] = {}

    def touch_user(self, name: str) -> None:
        self._users[name] = utcnow()

    def touch_server(self, owner: str) -> None:
        now = utcnow()
        self._servers[owner] = now
        self._users[owner] = now

    def user_latest(self, name: str) -> dt.datetime | None:
        return self._users.get(name)

    def server_latest(self, owner: str) -> dt.datetime | None:
        return self._servers.get(owner)

    async def flush(self) -> None:
        users, servers = self._users, self._servers
        self._users, self._servers = {}, {}
        if not users and not servers:
            return
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
