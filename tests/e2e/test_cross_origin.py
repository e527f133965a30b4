"""Pages of another origin cannot drive a user's server; JupyterLab on the hub itself still can.

The hub's session cookie goes with every request of the same *site*, and another port of the same
host is the same site. So a page served from another port, opened in alice's logged-in browser,
tries what a malicious page would: start a terminal and a kernel, and open their WebSockets.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Self
from urllib.parse import quote, urlsplit

import pytest
import requests
from aiohttp import web
from playwright.sync_api import Page, expect

from tests.client import HubUser
from tests.e2e.test_login_spawn_notebook import log_in, run_first_cell
from tests.fixtures.hub import HubProcess, password_of
from tests.fixtures.traefik import free_port

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.browser]

ATTACK = """<!doctype html><title>Free cat pictures</title><pre id=log></pre><script>
const hub = %(hub)s, ws = hub.replace(/^http/, "ws"), user = %(user)s;
const results = {};
function socket(url, first) {
  return new Promise(resolve => {
    const s = new WebSocket(url);
    const timer = setTimeout(() => { s.close(); resolve("timed out"); }, 10000);
    s.onopen = () => { s.send(first); setTimeout(() => { s.close(); clearTimeout(timer); resolve("open"); }, 2000); };
    s.onerror = () => { clearTimeout(timer); resolve("failed"); };
  });
}
function execute(code) {
  return JSON.stringify({header: {msg_id: "evil", msg_type: "execute_request", username: "", session: "evil",
    version: "5.3", date: ""}, parent_header: {}, metadata: {}, channel: "shell", buffers: [],
    content: {code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false,
              stop_on_error: true}});
}
(async () => {
  for (const path of ["api/terminals", "api/kernels"]) {
    try {
      await fetch(`${hub}/user/${user}/${path}`, {method: "POST", mode: "no-cors", credentials: "include"});
      results[path] = "sent";
    } catch (error) { results[path] = "failed"; }
  }
  results.terminal = await socket(`${ws}/user/${user}/terminals/websocket/%(terminal)s`,
                                  JSON.stringify(["stdin", "echo pwned > pwned-by-terminal.txt\\r"]));
  results.kernel = await socket(`${ws}/user/${user}/api/kernels/%(kernel)s/channels`,
                                execute("open('pwned-by-kernel.txt', 'w').write('pwned')"));
  document.getElementById("log").textContent = JSON.stringify(results);
  window.results = results;
})();
</script>
"""


class AttackSite:
    """A tiny web site on another port of the hub's host, serving one page, in its own thread."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = free_port()
        self.page = ""
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def answer(self, request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_get("/", self.answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()

    def __enter__(self) -> Self:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.serve(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def alice(hub: HubProcess) -> HubUser:
    """alice with JupyterLab running, over plain HTTP, to look at her server from the hub's own origin."""
    user = HubUser(hub.url, "alice")
    assert user.login(password_of("alice")).url.endswith("/hub/home")
    assert user.start("jupyterlab").get("ready") is True
    return user


@pytest.fixture
def attack_site(hub: HubProcess) -> Iterator[AttackSite]:
    host = urlsplit(hub.url).hostname
    assert host, hub.url
    with AttackSite(host) as site:
        yield site


def names(user: HubUser, path: str, key: str) -> set[str]:
    response = user.get(path)
    assert response.status_code == 200, response.text
    return {item[key] for item in response.json()}


def wait_for_file(user: HubUser, name: str, timeout: float = 20) -> dict[str, Any]:
    """The contents model of a file in the user's server, once it exists."""
    deadline = time.monotonic() + timeout
    while (response := user.get(f"/user/{user.name}/api/contents/{quote(name)}")).status_code == 404:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_page_on_another_port_cannot_start_terminals_or_kernels_or_open_their_sockets(
    hub: HubProcess, alice: HubUser, attack_site: AttackSite, page: Page
) -> None:
    terminal = alice.send("POST", "/user/alice/api/terminals")
    assert terminal.status_code == 200, terminal.text
    kernel = alice.send("POST", "/user/alice/api/kernels", json={})
    assert kernel.status_code == 201, kernel.text
    terminals_before = names(alice, "/user/alice/api/terminals", "name")
    kernels_before = names(alice, "/user/alice/api/kernels", "id")

    log_in(page, hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    page.goto(f"{hub.url}/user/alice/lab")
    page.wait_for_selector(".jp-LauncherCard", timeout=60_000)  # her session reaches her server
    attack_site.page = ATTACK % {
        "hub": json.dumps(hub.url),
        "user": json.dumps("alice"),
        "terminal": quote(terminal.json()["name"]),
        "kernel": quote(kernel.json()["id"]),
    }
    page.goto(attack_site.url)
    page.wait_for_function("window.results !== undefined", timeout=40_000)
    sockets = page.evaluate("window.results")
    time.sleep(1)  # anything that got through has had time to act

    seen = {
        "sockets": {name: sockets[name] for name in ("terminal", "kernel")},
        "new terminals": names(alice, "/user/alice/api/terminals", "name") - terminals_before,
        "new kernels": names(alice, "/user/alice/api/kernels", "id") - kernels_before,
        "files written": [
            trace
            for trace in ("pwned-by-terminal.txt", "pwned-by-kernel.txt")
            if alice.get(f"/user/alice/api/contents/{trace}").status_code != 404
        ],
    }
    assert seen == {
        "sockets": {"terminal": "failed", "kernel": "failed"},
        "new terminals": set(),
        "new kernels": set(),
        "files written": [],
    }
    assert (sockets["api/terminals"], sockets["api/kernels"]) == ("sent", "sent")  # no-cors: sent, answer unreadable
    assert "forward-auth refused POST /user/alice/api/terminals for alice" in hub.log()


def test_jupyterlab_on_the_hub_runs_cells_saves_a_notebook_and_opens_a_terminal(
    hub: HubProcess, alice: HubUser, page: Page
) -> None:
    log_in(page, hub, "alice")
    expect(page.get_by_test_id("username")).to_have_text("alice")
    page.goto(f"{hub.url}/user/alice/lab")

    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    run_first_cell(page, "6*7", "42")

    page.keyboard.press("Control+s")
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_role("textbox").fill("answer.ipynb")
    dialog.locator(".jp-mod-accept").click()
    expect(dialog).to_have_count(0)
    saved = wait_for_file(alice, "answer.ipynb")
    cell = saved["content"]["cells"][0]
    assert (cell["source"], cell["outputs"][0]["data"]["text/plain"]) == ("6*7", "42")

    page.locator('[data-command="launcher:create"]').first.click()
    page.locator('.jp-LauncherCard[data-category="Other"]', has_text="Terminal").click()
    terminal = page.locator(".jp-Terminal .xterm")
    terminal.click()
    page.keyboard.type("echo typed in a terminal > from-terminal.txt\n")
    assert wait_for_file(alice, "from-terminal.txt")["content"] == "typed in a terminal\n"


def test_a_script_with_a_token_needs_no_origin_but_a_cookie_alone_must_bring_one(
    hub: HubProcess, alice: HubUser
) -> None:
    new_file = {"type": "file", "format": "text", "content": "from a script"}
    cookie_only = alice.http.put(f"{hub.url}/user/alice/api/contents/by-cookie.txt", json=new_file, timeout=30)
    assert cookie_only.status_code == 403
    assert cookie_only.text == "Refused: a change or a WebSocket needs the Origin header a browser sends.\n"
    assert alice.send("PUT", "/user/alice/api/contents/by-cookie.txt", json=new_file).status_code == 201

    token = hub.token("alice")
    deadline = time.monotonic() + 15  # the hub learns of a token made by the command line within seconds
    while (
        by_token := requests.put(
            f"{hub.url}/user/alice/api/contents/by-token.txt",
            json=new_file,
            timeout=30,
            headers={"Authorization": f"token {token}"},
        )
    ).status_code == 401:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert by_token.status_code == 201, by_token.text
