"""How long the forward-auth check takes: in-process, and over HTTP against a real hub process."""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import SESSION_KEY, STORAGE_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.config import Settings  # noqa: E402
from hub.handlers.forward_auth import forward_auth  # noqa: E402
from hub.accounts import AccountRegistry  # noqa: E402
from hub.keys import ACCOUNTS, SETTINGS  # noqa: E402
from hub.security import SESSION_COOKIE, session_storage  # noqa: E402
from tests.fixtures.hub import HubProcess, hub_config  # noqa: E402
from tests.fixtures.traefik import free_port, start_traefik  # noqa: E402

ROUNDS = 20_000


async def in_process(data_dir: Path) -> None:
    settings = Settings(hub={"data_dir": data_dir}, images=[{"name": "x", "image": "x"}])
    storage = session_storage(settings)
    app = web.Application()
    app[SETTINGS] = settings
    accounts = AccountRegistry(None)  # type: ignore[arg-type]
    accounts.remember("alice", False)
    app[ACCOUNTS] = accounts
    app.router.add_get("/hub/forward-auth/{owner}", forward_auth, name="forward_auth")
    app.router.add_get("/hub/login", forward_auth, name="login")
    # A real encrypted cookie, as the browser sends it.
    cookie = storage._fernet.encrypt(storage._encoder({"session": {"user": "alice", "iat": time.time()},
                                                       "created": int(time.time())}).encode()).decode()
    samples = []
    for _ in range(ROUNDS):
        request = make_mocked_request("GET", "/hub/forward-auth/alice", app=app, match_info={"owner": "alice"},
                                      headers={"Cookie": f"{SESSION_COOKIE}={cookie}; _xsrf=1",
                                               "X-Forwarded-Uri": "/user/alice/api/kernels"})
        request[STORAGE_KEY] = storage
        began = time.perf_counter()
        request.pop(SESSION_KEY, None)
        response = await forward_auth(request)
        samples.append(time.perf_counter() - began)
        assert response.status == 200
    samples.sort()
    print(f"forward-auth in-process: median {statistics.median(samples) * 1e6:.0f} us, "
          f"p99 {samples[int(len(samples) * 0.99)] * 1e6:.0f} us over {ROUNDS} checks")


async def over_http(workdir: Path) -> None:
    traefik = start_traefik(workdir / "traefik")
    port = free_port()
    config = hub_config(port=port, traefik=traefik, data_dir=workdir / "data", prefix="benchfa", run_prefix="benchfa",
                        images=[{"name": "x", "image": "x"}], auth={"type": "dummy", "dummy_password": "bench-pass"})
    config_path = workdir / "hub.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(config))
    hub = HubProcess(traefik.web_url, f"http://127.0.0.1:{port}", config_path, workdir / "hub.log", "benchfa", traefik)
    hub.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(f"{hub.internal_url}/hub/login")).text()
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            await http.post(f"{hub.internal_url}/hub/login",
                            data={"_xsrf": xsrf, "username": "alice", "password": "bench-pass"})
            samples = []
            for _ in range(2000):
                began = time.perf_counter()
                async with http.get(f"{hub.internal_url}/hub/forward-auth/alice",
                                    headers={"X-Forwarded-Uri": "/user/alice/lab"}) as response:
                    await response.read()
                    assert response.status == 200
                samples.append(time.perf_counter() - began)
        samples.sort()
        print(f"forward-auth over HTTP (loopback, keep-alive): median {statistics.median(samples) * 1e3:.2f} ms, "
              f"p99 {samples[int(len(samples) * 0.99)] * 1e3:.2f} ms")
    finally:
        hub.stop()
        traefik.stop()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await in_process(Path(tmp) / "inproc")
        await over_http(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
