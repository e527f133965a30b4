"""Groups of users: the one writer of groups and memberships, and an in-memory view for the spawn form."""

from __future__ import annotations

from hub.accounts import AccountService
from hub.db import Sessionmaker


class GroupService:
    def __init__(self, sessions: Sessionmaker, accounts: AccountService) -> None:
        self.sessions = sessions
        self.accounts = accounts

    async def load(self) -> None:
        """Read groups and memberships into memory (at start and after outside changes)."""

    def groups_of(self, username: str) -> frozenset[str]:
        """The names of the user's groups (from memory)."""
        return frozenset()

    async def sync_user(self, username: str, groups: frozenset[str]) -> None:
        """Make the user's memberships exactly ``groups`` (creating missing groups): a login with manage_groups."""
