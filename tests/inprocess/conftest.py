"""In-process fixtures: the real hub application and server manager over fakes (tests/fakes.py).

- settings       Settings with a temporary data dir (SQLite) and two images
- sessions       the database, migrated as at start-up
- accounts       an AccountService on it, with alice, bob and admin (admin is an admin)
- spawner, proxy FakeSpawner and FakeProxy
- manager        a ServerManager over those
- app_client     the whole aiohttp app (create_app with the fakes) behind aiohttp's TestClient
- tokens_of      API tokens made for named users (API calls carry no cookies, so no CSRF)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.accounts import AccountService
from hub.app import create_app
from hub.config import Settings
from hub.db import Sessionmaker, open_database
from hub.keys import ACCOUNTS, TOKENS
from hub.servers import ServerManager
from hub.tokens import TokenStore
from tests.fakes import FakeProxy, FakeSpawner

IMAGES = [
    {"name": "lab", "display_name": "Lab", "image": "fake/lab:1"},
    {"name": "app", "display_name": "App", "image": "fake/app:1", "jupyter": False, "port": 8000},
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[Sessionmaker]:
    engine, factory = await open_database(settings.db_url)
    yield factory
    await engine.dispose()


@pytest.fixture
async def accounts(sessions: Sessionmaker) -> AccountService:
    service = AccountService(sessions)
    await service.load()
    await service.add(["alice", "bob"])
    await service.add(["admin"], admin=True)
    return service


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner()


@pytest.fixture
def proxy() -> FakeProxy:
    return FakeProxy()


@pytest.fixture
async def manager(
    settings: Settings, sessions: Sessionmaker, accounts: AccountService, spawner: FakeSpawner, proxy: FakeProxy
) -> AsyncIterator[ServerManager]:
    servers = ServerManager(settings, sessions, spawner, proxy)
    yield servers
    await servers.shutdown()


@pytest.fixture
async def app_client(settings: Settings, spawner: FakeSpawner, proxy: FakeProxy) -> AsyncIterator[TestClient]:
    app = create_app(settings, spawner=spawner, proxy=proxy)
    client = TestClient(TestServer(app))
    await client.start_server()
    accounts = app[ACCOUNTS]
    await accounts.add(["alice", "bob"])
    await accounts.add(["admin"], admin=True)
    yield client
    await client.close()


TokenMaker = Callable[[str], Awaitable[str]]


@pytest.fixture
def tokens_of(app_client: TestClient) -> TokenMaker:
    async def make(name: str) -> str:
        store: TokenStore = app_client.server.app[TOKENS]
        return (await store.create(name, "test"))[1]

    return make
