"""The async database engine and session factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from hub.migrate import upgrade
from hub.models import User

Sessionmaker = async_sessionmaker[AsyncSession]


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]  # DB-API objects: untyped
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


async def open_database(url: str) -> tuple[AsyncEngine, Sessionmaker]:
    """Bring the schema up to date (create it, or migrate it: hub.migrate), then connect."""
    await upgrade(url)
    engine = create_engine(url)
    return engine, async_sessionmaker(engine, expire_on_commit=False)


async def database(url: str) -> AsyncIterator[Sessionmaker]:
    engine, sessions = await open_database(url)
    try:
        yield sessions
    finally:
        await engine.dispose()


async def get_user(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()
