"""Built-in idle culling: an idle server is stopped and told why; one with a kernel at work is not."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pytest

from tests.client import HubUser, origin_of
from tests.fixtures.hub import HubFactory

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
PASSWORD = "cull-password"
LOOP = "import time\nfor step in range(600):\n    print(step, flush=True)\n    time.sleep(0.5)\n"


async def keep_a_kernel_busy(base_url: str, cookies: dict[str, str], prefix: str) -> None:
    """Start a kernel on the user's server and make it run a long loop, then hang up: it keeps running."""
    origin = origin_of(base_url)  # what a browser on the hub's pages sends; forward-auth requires it
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.post(f"{base_url}{prefix}api/kernels", json={}, headers={"Origin": origin}) as response:
            assert response.status == 201, await response.text()
            kernel = await response.json()
        channels = f"{base_url.replace('http', 'ws', 1)}{prefix}api/kernels/{kernel['id']}/channels"
        async with http.ws_connect(channels, origin=origin) as socket:
            message_id = uuid.uuid4().hex
            await socket.send_str(
                json.dumps(
                    {
                        "header": {
                            "msg_id": message_id,
                            "msg_type": "execute_request",
                            "username": "",
                            "session": uuid.uuid4().hex,
                            "version": "5.3",
                            "date": "",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "buffers": [],
                        "content": {
                            "code": LOOP,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            async for frame in socket:
                data = json.loads(frame.data)
                if data.get("msg_type") == "stream" and data.get("parent_header", {}).get("msg_id") == message_id:
                    return  # the loop is printing


def test_an_idle_server_is_culled_and_a_busy_kernel_is_not(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth={"type": "dummy", "dummy_password": PASSWORD}, culler={"idle_timeout": 6, "interval": 1})
    users = {}
    for name in ("sleeper", "worker"):  # the worker last: its kernel starts right after its server
        users[name] = HubUser(hub.url, name)
        users[name].login(PASSWORD)
        assert users[name].start("jupyterlab").get("ready") is True
    cookies = {cookie.name: cookie.value for cookie in users["worker"].http.cookies}
    asyncio.run(keep_a_kernel_busy(hub.url, cookies, "/user/worker/"))

    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and 'data-state="stopped"' not in users["sleeper"].get("/hub/home").text:
        time.sleep(1)
    home = users["sleeper"].get("/hub/home").text
    assert 'data-state="stopped"' in home
    assert "Your server was stopped after 6 seconds without activity. Your files are kept" in home
    time.sleep(3)  # well past the timeout for the worker too, whose last request was long ago
    assert 'data-state="running"' in users["worker"].get("/hub/home").text
