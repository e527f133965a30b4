"""A real client nobody here wrote: jupyterhub-idle-culler (from PyPI) against our REST API."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.client import HubUser
from tests.fixtures.hub import HubFactory, password_of

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
TIMEOUT = 6


def test_the_idle_culler_stops_an_idle_server_and_leaves_an_active_one(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    users = {}
    for name in ("admin", "idle", "busy"):
        hub.add_user(name, password_of(name), admin=name == "admin")
    for name in ("idle", "busy"):
        users[name] = HubUser(hub.url, name)
        users[name].login(password_of(name))
        assert users[name].start("echo").get("ready") is True
    token = hub.token("admin")

    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.is_set():
            users["busy"].get("/user/busy/work")
            time.sleep(0.5)

    worker = threading.Thread(target=keep_busy, daemon=True)
    worker.start()
    time.sleep(1)
    culler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--url={hub.internal_url}/hub/api",
            f"--timeout={TIMEOUT}",
            "--cull-every=2",
            "--api-page-size=1",
        ],
        env={**os.environ, "JUPYTERHUB_API_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        idle_state = None
        while time.monotonic() < deadline:
            model = requests.get(
                f"{hub.url}/hub/api/users/idle", headers={"Authorization": f"token {token}"}, timeout=30
            ).json()
            idle_state = model["servers"]
            if not idle_state:
                break
            time.sleep(1)
    finally:
        culler.terminate()
        output, _ = culler.communicate(timeout=20)
        stop.set()
        worker.join(5)
    assert idle_state == {}, f"the idle server was not culled; culler said:\n{output}"
    assert "Culling server idle" in output
    busy = requests.get(f"{hub.url}/hub/api/users/busy", headers={"Authorization": f"token {token}"}, timeout=30).json()
    assert busy["servers"][""]["ready"] is True, output
    assert users["busy"].get("/user/busy/work").status_code == 200
    assert users["idle"].get("/hub/home").text.count('data-state="stopped"') == 1
