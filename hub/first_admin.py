"""The first admin of a new hub: a one-time link made by ``hub setup-link``, no password in any file.

The link's token is kept only as a SHA-256 in the database, so the command and the running hub
agree without sharing memory, and using the link consumes it in the same step (two browsers
cannot both use one link). Nothing secret is written to the log: a log line anyone can fake
must never be where the admin looks for the link.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, func, select

from hub.db import Sessionmaker
from hub.models import HubState, User

SETUP_KEY = "setup_token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def has_users(sessions: Sessionmaker) -> bool:
    async with sessions() as session:
        return bool((await session.execute(select(func.count(User.id)))).scalar_one())


async def make_setup_link(sessions: Sessionmaker, public_url: str) -> str | None:
    """A new one-time link (replacing any earlier one), or None when the hub has users already."""
    if await has_users(sessions):
        return None
    token = secrets.token_urlsafe(24)
    async with sessions.begin() as session:
        row = await session.get(HubState, SETUP_KEY)
        if row is None:
            session.add(HubState(key=SETUP_KEY, value=_digest(token)))
        else:
            row.value = _digest(token)
    return f"{public_url.rstrip('/')}/hub/setup?token={token}"


async def setup_link_valid(sessions: Sessionmaker, token: str) -> bool:
    async with sessions() as session:
        row = await session.get(HubState, SETUP_KEY)
    return row is not None and bool(token) and secrets.compare_digest(row.value, _digest(token))


async def consume_setup_link(sessions: Sessionmaker, token: str) -> bool:
    """Use the link up: True for exactly one caller with the right token."""
    async with sessions.begin() as session:
        result = await session.execute(
            delete(HubState).where(HubState.key == SETUP_KEY, HubState.value == _digest(token))
        )
        return bool(getattr(result, "rowcount", 0))
