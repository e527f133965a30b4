"""Who may hold a session right now: every user's admin flag and session cut-off, kept in memory.

Sessions live in encrypted cookies, so the hub cannot delete one. Instead each cookie carries the
time it was issued, and a session counts only if the user still exists and it was issued after
the user's cut-off (moved by logging out). Admin rights are read from here, not from the cookie,
so taking them away takes effect at once. Forward auth consults this map: no database query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from hub.db import Sessionmaker, get_user
from hub.models import User


@dataclass(frozen=True, slots=True)
class Account:
    admin: bool
    sessions_valid_after: float


class AccountRegistry:
    def __init__(self, sessions: Sessionmaker) -> None:
        self.sessions = sessions
        self._accounts: dict[str, Account] = {}

    async def load(self) -> None:
        async with self.sessions() as session:
            rows = (await session.execute(select(User.name, User.admin, User.sessions_valid_after))).all()
        self._accounts = {name: Account(admin, valid_after or 0.0) for name, admin, valid_after in rows}

    def get(self, name: str) -> Account | None:
        return self._accounts.get(name)

    def remember(self, name: str, admin: bool) -> None:
        current = self._accounts.get(name)
        # A name seen for the first time (or made again after a deletion) accepts no earlier session.
        self._accounts[name] = Account(admin, current.sessions_valid_after if current else time.time())

    def forget(self, name: str) -> None:
        self._accounts.pop(name, None)

    async def end_sessions(self, name: str) -> None:
        """Every session of the user issued until now stops counting (logging out ends them all)."""
        now = time.time()
        async with self.sessions.begin() as session:
            user = await get_user(session, name)
            if user is None:
                return
            user.sessions_valid_after = now
            self._accounts[name] = Account(user.admin, now)
