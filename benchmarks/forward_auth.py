"""How long the forward-auth check takes: called in process, and over HTTP (loopback, keep-alive).

Both run the hub's real application (``create_app``) with the fakes of tests/fakes.py in place of
Docker and Traefik, so alice has a running server and every check is an allowed one, the common
case. Run: ``.venv/bin/python benchmarks/forward_auth.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer, make_mocked_request
from aiohttp_session import SESSION_KEY, STORAGE_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.app import create_app
from hub.config import Settings
from hub.handlers.forward_auth import forward_auth
from hub.keys import ACCOUNTS, SERVERS
from hub.security import SESSION_COOKIE, session_storage
from tests.fakes import FakeProxy, FakeSpawner

ROUNDS = int(__import__("os").environ.get("FA_ROUNDS", "20000"))
HTTP_ROUNDS = 2_000


def percentiles(samples: list[float], scale: float) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples) * scale, samples[int(len(samples) * 0.99)] * scale


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            hub={"data_dir": Path(tmp) / "data"},
            images=[{"name": "x", "image": "x"}],  # type: ignore[arg-type]
            traefik={"dynamic_dir": Path(tmp) / "routes"},
        )  # type: ignore[arg-type]
        app = create_app(settings, spawner=FakeSpawner(), proxy=FakeProxy())
        server = TestServer(app)
        await server.start_server()
        try:
            await app[ACCOUNTS].add(["alice"])
            progress = await app[SERVERS].start("alice", settings.images[0])
            async for _ in progress.follow():
                pass
            account = app[ACCOUNTS].get("alice")
            assert account is not None
            storage = session_storage(settings)
            session = {
                "session": {"user": "alice", "uid": account.id, "iat": time.time() + 1},
                "created": int(time.time()),
            }
            cookie = storage._fernet.encrypt(storage._encoder(session).encode()).decode()  # as the browser sends it
            headers = {
                "Cookie": f"{SESSION_COOKIE}={cookie}; _xsrf=1",
                "X-Forwarded-Uri": "/user/alice/api/kernels",
                "X-Forwarded-Method": "GET",
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": "localhost:8000",
            }

            samples = []
            for _ in range(ROUNDS):
                request = make_mocked_request(
                    "GET", "/hub/forward-auth/alice", app=app, match_info={"owner": "alice"}, headers=headers
                )
                request[STORAGE_KEY] = storage
                began = time.perf_counter()
                request.pop(SESSION_KEY, None)
                response = await forward_auth(request)
                samples.append(time.perf_counter() - began)
                assert response.status == 200 and response.headers["Authorization"].startswith("token ")
            median, p99 = percentiles(samples, 1e6)
            print(f"forward-auth in-process: median {median:.0f} us, p99 {p99:.0f} us over {ROUNDS} checks")

            samples = []
            async with aiohttp.ClientSession() as http:
                url = str(server.make_url("/hub/forward-auth/alice"))
                for _ in range(HTTP_ROUNDS):
                    began = time.perf_counter()
                    async with http.get(url, headers=headers) as answer:
                        await answer.read()
                        assert answer.status == 200
                    samples.append(time.perf_counter() - began)
            median, p99 = percentiles(samples, 1e3)
            print(f"forward-auth over HTTP (loopback, keep-alive): median {median:.2f} ms, p99 {p99:.2f} ms")
        finally:
            await server.close()


if __name__ == "__main__":
    asyncio.run(main())
