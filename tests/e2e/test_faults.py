"""Servers survive faults: spawn storms, a hub killed mid-storm, crashes, Traefik or Docker away, SIGTERM."""

from __future__ import annotations

import signal
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.client import HubUser, wait_for
from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.hub import HubFactory, HubProcess
from tests.fixtures.traefik import start_traefik

pytestmark = [pytest.mark.docker, pytest.mark.traefik]
PASSWORD = "storm-password"
DUMMY = {"type": "dummy", "dummy_password": PASSWORD, "admin_users": ["admin"]}
FAST = {"reconcile_interval": 1, "dependency_check_interval": 1}


def log_in(hub: HubProcess, name: str) -> HubUser:
    user = HubUser(hub.url, name)
    assert user.login(PASSWORD).url.endswith("/hub/home")
    return user


def start_and_follow(user: HubUser, image: str = "echo") -> list[dict[str, Any]]:
    response = user.post_form("/hub/spawn", {"image": image}, xsrf_from="/hub/spawn")
    assert response.status_code == 200, response.text[:300]
    events = []
    with user.get(f"/hub/api/users/{user.name}/server/progress", stream=True) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                import json

                events.append(json.loads(line[6:]))
    return events


def test_twenty_users_start_at_once_with_five_slots(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth=DUMMY, lifecycle={"concurrent_spawns": 5})
    users = [log_in(hub, f"storm{number:02d}") for number in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(start_and_follow, users))
    for user, events in zip(users, results, strict=True):
        assert events[-1].get("ready") is True, (user.name, events[-1])
        assert user.get(f"/user/{user.name}/check").status_code == 200
    places = [event["message"] for events in results for event in events if "in line" in event["message"]]
    assert places, "nobody was told their place in line"
    assert any("you are number 1 in line" in message for message in places)
    assert max(int(message.split("number ")[1].split()[0]) for message in places) >= 10


def test_a_hub_killed_mid_storm_leaves_nothing_orphaned(
    hub_factory: HubFactory, docker_client: docker.DockerClient
) -> None:
    hub = hub_factory(auth=DUMMY, lifecycle={"concurrent_spawns": 5, **FAST})
    users = [log_in(hub, f"kill{number:02d}") for number in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        for user in users:
            pool.submit(user.post_form, "/hub/spawn", {"image": "echo"}, xsrf_from="/hub/spawn")
        time.sleep(1.5)
        hub.kill()
    hub.start()

    def settled() -> bool:
        models = [user.get(f"/hub/api/users/{user.name}").json() for user in users]
        return all(not model["pending"] for model in models)

    wait_for(settled, 60, "every server to be running or stopped")
    running = set()
    for user in users:
        page = user.get("/hub/home").text
        assert f'data-testid="username">{user.name}' in page  # still logged in after the crash
        model = user.get(f"/hub/api/users/{user.name}").json()
        if model["servers"]:
            assert model["servers"][""]["ready"] is True
            assert user.get(f"/user/{user.name}/check").status_code == 200
            running.add(user.name)
        else:
            assert 'data-state="stopped"' in page
    containers = docker_client.containers.list(all=True, filters={"label": f"hub.prefix={hub.prefix}"})
    assert {container.labels["hub.username"] for container in containers} == running
    assert all(container.status == "running" for container in containers)
    routes = {path.name for path in hub.traefik.dynamic_dir.glob("user-*.yaml")}
    assert routes == {f"user-{name}.yaml" for name in running}
    volumes = docker_client.volumes.list(filters={"label": f"hub.prefix={hub.prefix}"})
    assert {volume.attrs["Labels"]["hub.username"] for volume in volumes} <= {user.name for user in users}


def test_a_server_that_runs_out_of_memory_is_reported(
    hub_factory: HubFactory, base_image: str, echo_command: list[str]
) -> None:
    grow = (
        "import threading, time\n"
        "threading.Thread(target=lambda: exec(compile(" + repr(echo_command[2]) + ", 'echo', 'exec'), {}),"
        " daemon=True).start()\n"
        "time.sleep(4)\n"
        "hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]\n"
        "time.sleep(60)\n"
    )
    images = [
        {
            "name": "hog",
            "image": base_image,
            "jupyter": False,
            "port": 8000,
            "volume_mount": "/data",
            "mem_limit": "96m",
            "command": ["python3", "-c", grow],
        }
    ]
    hub = hub_factory(auth=DUMMY, images=images, lifecycle=FAST)
    carol = log_in(hub, "carol")
    assert start_and_follow(carol, "hog")[-1].get("ready") is True

    def reported() -> str | None:
        text = carol.get("/hub/home").text
        return text if "out of memory" in text else None

    page = wait_for(reported, 45, "the out-of-memory report")
    assert "Your server was stopped because it ran out of memory (its limit is 96m)." in page
    assert 'data-state="stopped"' in page
    admin = log_in(hub, "admin")
    assert "ran out of memory" in admin.get("/hub/admin").text


def test_routes_come_back_when_traefik_restarts(hub_factory: HubFactory) -> None:
    hub = hub_factory(auth=DUMMY, lifecycle=FAST)
    dave = log_in(hub, "dave")
    assert start_and_follow(dave)[-1].get("ready") is True
    assert dave.get("/user/dave/before").status_code == 200
    web_port, api_port = int(hub.url.rsplit(":", 1)[1]), int(hub.traefik.api_url.rsplit(":", 1)[1])
    hub.traefik.stop()
    direct = HubUser(hub.internal_url, "dave")
    direct.http.cookies = dave.http.cookies
    notice = wait_for(lambda: "cannot reach its proxy" in direct.get("/hub/home").text, 20, "the proxy notice")
    assert notice
    hub.traefik = start_traefik(Path(hub.traefik.dynamic_dir).parent, web_port, api_port, fast_lane=hub.internal_url)
    assert wait_for(lambda: dave.get("/user/dave/after").status_code == 200, 20, "the route to come back")
    assert wait_for(lambda: "cannot reach its proxy" not in dave.get("/hub/home").text, 20, "the notice to go")


def test_docker_away_is_a_clear_message_not_a_500(hub_factory: HubFactory, run_prefix: str) -> None:
    hub = hub_factory(auth=DUMMY, spawner={"docker_url": f"unix:///tmp/{run_prefix}-no-docker.sock"})
    erin = log_in(hub, "erin")
    home = erin.get("/hub/home")
    assert home.status_code == 200
    assert "the hub cannot reach Docker" in home.text
    refused = erin.post_form("/hub/spawn", {"image": "echo"}, xsrf_from="/hub/spawn")
    assert refused.status_code == 503
    assert "Servers cannot start or stop right now" in refused.text
    health = requests.get(f"{hub.url}/hub/health", timeout=30).json()
    assert health["docker"] is False and health["status"] == "degraded"


class SocketRelay(socketserver.ThreadingUnixStreamServer):
    """Docker's socket at another path, opened only when the test says: Docker "arrives" after the hub."""

    daemon_threads = True

    def __init__(self, path: str, target: str = "/var/run/docker.sock") -> None:
        self.target = target
        super().__init__(path, RelayConnection)


class RelayConnection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.server.target)  # type: ignore[attr-defined]

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)  # the far end sees the close; its reply still comes back
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join(30)
        upstream.close()


def test_a_start_just_after_docker_arrives_is_not_refused_on_stale_news(
    hub_factory: HubFactory, run_prefix: str
) -> None:
    path = f"/tmp/{run_prefix}-late-docker.sock"
    hub = hub_factory(auth=DUMMY, spawner={"docker_url": f"unix://{path}"}, lifecycle={"dependency_check_interval": 60})
    erin = log_in(hub, "erin")
    assert "the hub cannot reach Docker" in erin.get("/hub/home").text
    relay = SocketRelay(path)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        events = start_and_follow(erin)  # at once: the monitor's next look may be a second or more away
        assert events[-1].get("ready") is True, events[-1]
        assert erin.get("/user/erin/after-docker-came").status_code == 200
        assert "the hub cannot reach Docker" not in erin.get("/hub/home").text
    finally:
        hub.stop()  # before Docker's socket goes again; the run's containers are removed by their label
        relay.shutdown()
        relay.server_close()
        Path(path).unlink(missing_ok=True)


def test_sigterm_leaves_running_servers_and_ends_starts_cleanly(
    hub_factory: HubFactory, docker_client: docker.DockerClient
) -> None:
    hub = hub_factory(auth=DUMMY, lifecycle=FAST)
    frank = log_in(hub, "frank")
    assert start_and_follow(frank)[-1].get("ready") is True
    gina = log_in(hub, "gina")
    gina.post_form("/hub/spawn", {"image": "jupyterlab"}, xsrf_from="/hub/spawn")
    time.sleep(0.5)
    assert hub.process is not None
    began = time.monotonic()
    hub.process.send_signal(signal.SIGTERM)
    assert hub.process.wait(40) == 0
    assert time.monotonic() - began < 35
    names = {
        c.labels["hub.username"]
        for c in docker_client.containers.list(filters={"label": [f"hub.prefix={hub.prefix}", f"{RUN_LABEL}"]})
    }
    assert "frank" in names and "gina" not in names
    hub.start()
    assert frank.get("/user/frank/still-here").status_code == 200
    assert frank.get("/hub/api/users/frank").json()["servers"][""]["ready"] is True
    assert gina.get("/hub/api/users/gina").json()["servers"] == {}


def test_a_container_nobody_knows_is_reported_and_removed_when_configured(
    hub_factory: HubFactory, docker_client: docker.DockerClient, base_image: str, run_prefix: str
) -> None:
    hub = hub_factory(auth=DUMMY, lifecycle={**FAST, "unknown_containers": "remove"})
    labels = {
        "hub.managed": "true",
        "hub.prefix": hub.prefix,
        "hub.user": "stray",
        "hub.username": "stray",
        RUN_LABEL: run_prefix,
    }
    stray = docker_client.containers.run(
        base_image, ["sleep", "300"], detach=True, labels=labels, name=f"{hub.prefix}-user-stray", init=True
    )
    wait_for(
        lambda: not docker_client.containers.list(all=True, filters={"id": stray.id}),
        30,
        "the stray container to be removed",
    )
    assert "removing container" in hub.log() and "belongs to no user of this hub" in hub.log()
