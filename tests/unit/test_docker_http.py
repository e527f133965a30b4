"""hub/docker_http.py: the start path's Docker calls from the event loop send what the SDK would send, and
answer with the SDK's errors. (Real Docker and the real socket proxy: tests/integration.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.models.containers
import pytest
from aiohttp import web

from hub.config import SpawnerSection
from hub.docker_http import DockerHTTP, api_error
from hub.docker_spawner import DockerSpawner
from hub.errors import ServiceUnavailable
from hub.spawner import ServerHandle

OPTIONS: dict[str, Any] = {
    "name": "hub-user-alice",
    "command": ["start-notebook.py", "--ServerApp.base_url=/user/alice/"],
    "environment": {"JUPYTER_TOKEN": "secret", "EMPTY": ""},
    "labels": {"hub.managed": "true", "hub.user": "alice"},
    "network": "containerhub",
    "volumes": {"hub-user-alice": {"bind": "/home/jovyan/work", "mode": "rw"}},
    "init": True,
    "detach": True,
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
    "pids_limit": 512,
    "user": "1000",
    "mem_limit": "1g",
    "nano_cpus": 1_000_000_000,
}


async def test_a_create_sends_the_body_and_query_the_sdk_sends() -> None:
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    sdk: Any = docker.models.containers
    arguments = sdk._create_container_args({**OPTIONS, "image": "lab:1", "version": "1.41"})
    by_sdk: dict[str, Any] = {}

    def capture(url: str, data: Any = None, params: Any = None, **_: Any) -> Any:
        by_sdk.update(url=url, body=dict(data), params=params)
        raise RuntimeError("captured")

    client.api._post_json = capture  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="captured"):
        client.api.create_container(**arguments)
    ours: dict[str, Any] = {}

    class Capture(DockerHTTP):
        async def request(self, method: str, path: str, **kwargs: Any) -> Any:
            ours.update(path=path, body=kwargs["body"], params=kwargs["params"])
            return {"Id": "abc"}

    made = await Capture(client.api, lambda call: asyncio.to_thread(call)).create_container(arguments)
    assert made == "abc"
    assert by_sdk["url"].endswith(f"/v1.41{ours['path']}")
    assert ours["params"] == by_sdk["params"] == {"name": "hub-user-alice"}
    assert ours["body"] == {key: value for key, value in by_sdk["body"].items() if value is not None}
    assert "JUPYTER_TOKEN=secret" in ours["body"]["Env"]
    assert ours["body"]["HostConfig"]["CapDrop"] == ["ALL"]


def test_error_answers_become_the_sdks_exceptions() -> None:
    gone = api_error(404, "http://docker/v1.41/containers/x/json", "Not Found", b'{"message":"No such container: x"}')
    assert isinstance(gone, docker.errors.NotFound)
    assert gone.status_code == 404 and gone.explanation == "No such container: x"
    busy = api_error(409, "http://docker/v1.41/containers/create", "Conflict", b'{"message":"name in use"}')
    assert type(busy) is docker.errors.APIError and busy.status_code == 409
    assert "409 Client Error" in str(busy) and "name in use" in str(busy)
    odd = api_error(500, "http://docker/v1.41/containers/x/start", "Internal Server Error", b"plain words\n")
    assert odd.explanation == "plain words" and odd.is_server_error()


@pytest.mark.parametrize("through", ["loop", "sdk"])
async def test_calls_reach_a_daemon_on_a_unix_socket_and_its_refusals_come_back(tmp_path: Path, through: str) -> None:
    """A small stand-in daemon on a real Unix socket: the paths, queries and answers as the engine sees them,
    from the loop and through the SDK's session (the way TLS and SSH connections go)."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request.method, request.path, dict(request.query)))
        if request.path.endswith("/containers/html/json"):
            return web.Response(text="<html>a front end's page</html>", content_type="text/html")
        if request.path.endswith("/containers/gone/json"):
            return web.json_response({"message": "No such container: gone"}, status=404)
        if request.path.endswith("/json"):
            return web.json_response({"Id": "c1", "Name": "/c1", "State": {"Status": "running"}})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    socket = str(tmp_path / "docker.sock")
    await web.UnixSite(runner, socket).start()
    client = docker.DockerClient(base_url=f"unix://{socket}", version="1.45")
    engine = DockerHTTP(client.api, lambda call: asyncio.to_thread(call))
    assert engine.on_loop
    if through == "sdk":
        engine._base = None
    try:
        assert (await engine.inspect("c1"))["State"]["Status"] == "running"
        await engine.stop("c1", 7)
        await engine.remove("c1")
        with pytest.raises(docker.errors.NotFound, match="No such container: gone"):
            await engine.inspect("gone")
        with pytest.raises(docker.errors.DockerException):  # the spawner tells the person Docker is away
            await engine.inspect("html")
    finally:
        await engine.close()
    with pytest.raises(docker.errors.DockerException, match="shutting down"):
        await engine.inspect("c1")
        await runner.cleanup()
        client.close()
    assert seen == [
        ("GET", "/v1.45/containers/c1/json", {}),
        ("POST", "/v1.45/containers/c1/stop", {"t": "7"}),
        ("DELETE", "/v1.45/containers/c1", {"v": "False", "link": "False", "force": "True"}),
        ("GET", "/v1.45/containers/gone/json", {}),
        ("GET", "/v1.45/containers/html/json", {}),
    ]


async def test_docker_away_during_a_stop_is_a_clear_message() -> None:
    away = DockerSpawner(SpawnerSection(docker_url="unix:///nonexistent/docker.sock"))
    away._client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    with pytest.raises(ServiceUnavailable, match="Docker is not reachable right now"):
        await away.stop(ServerHandle("c1", "hub-user-gina", "hub-user-gina", "http://10.0.0.9:8888"))
    await away.close()


def test_transports_without_a_loop_client_keep_the_sdk() -> None:
    """TLS (and SSH) connections stay with the SDK's session, in the spawner's threads."""
    tls = docker.DockerClient(base_url="tcp://127.0.0.1:2376", version="1.41", tls=True)
    plain = docker.DockerClient(base_url="tcp://127.0.0.1:2375", version="1.41")
    assert not DockerHTTP(tls.api, lambda call: asyncio.to_thread(call)).on_loop
    assert DockerHTTP(plain.api, lambda call: asyncio.to_thread(call)).on_loop
