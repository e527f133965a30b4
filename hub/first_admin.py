"""The first admin of a new hub: a one-time link printed in the hub's log, no password in any file."""

from __future__ import annotations

import hashlib
import logging
import secrets

from sqlalchemy import func, select

from hub.db import Sessionmaker
from hub.models import User

log = logging.getLogger(__name__)


class FirstAdminSetup:
    """Holds the one-time setup token while the hub has no users."""

    def __init__(self) -> None:
        self._token_hash: str | None = None

    @property
    def pending(self) -> bool:
        return self._token_hash is not None

    async def prepare(self, sessions: Sessionmaker, public_url: str) -> None:
        async with sessions() as session:
            count = (await session.execute(select(func.count(User.id)))).scalar_one()
        if count:
            return
        token = secrets.token_urlsafe(24)
        self._token_hash = hashlib.sha256(token.encode()).hexdigest()
        link = f"{public_url.rstrip('/')}/hub/setup?token={token}"
        log.warning("this hub has no users yet. Create the first admin here (one-time link): %s", link)

    def check(self, token: str) -> bool:
        if self._token_hash is None:
            return False
        return secrets.compare_digest(self._token_hash, hashlib.sha256(token.encode()).hexdigest())

    def done(self) -> None:
        self._token_hash = None
