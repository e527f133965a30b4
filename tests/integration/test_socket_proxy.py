"""The hub's spawner through the socket proxy, against the real Docker daemon: what the hub does passes,
what would reach the host does not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import docker
import docker.errors
import pytest
from aiohttp import web

from hub import names
from hub.backup import backup
from hub.config import ImageSpec, Settings, SpawnerSection
from hub.db import open_database
from hub.docker_spawner import DockerSpawner
from hub.models import User
from hub.restore import restore
from hub.socket_proxy import create_app
from hub.spawner import SpawnRequest
from tests.fixtures.docker import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("dump_containers_on_failure")]
DOCKER_SOCKET = "/var/run/docker.sock"


@contextlib.contextmanager
def serving_proxy(joinable: tuple[str, ...] = (), networks: tuple[str, ...] = ()) -> Iterator[str]:
    """The proxy on a Unix socket of its own, served by a thread (Docker clients here block while they wait)."""
    folder = Path(tempfile.mkdtemp(prefix="hubproxy"))  # short: Unix socket paths have a length limit
    socket = folder / "docker.sock"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="socket-proxy", daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(create_app(DOCKER_SOCKET, joinable, networks))
        await runner.setup()
        await web.UnixSite(runner, str(socket)).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"unix://{socket}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def proxy_url() -> Iterator[str]:
    with serving_proxy() as url:
        yield url


@pytest.fixture
def through_proxy(proxy_url: str) -> Iterator[docker.DockerClient]:
    """A plain Docker client that talks to the proxy, as anyone who took over the hub would."""
    client = docker.DockerClient(base_url=proxy_url)
    yield client
    client.close()


@pytest.fixture
def images_dir(tmp_path: Path, base_image: str) -> Path:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo built through the proxy > /built\n")
    return tmp_path


def spawner_for(proxy_url: str, run_prefix: str, images_dir: Path, **settings: object) -> DockerSpawner:
    return DockerSpawner(
        SpawnerSection(
            prefix=f"{run_prefix}-px",
            network=f"{run_prefix}-net",
            start_timeout=30,
            stop_timeout=2,
            extra_labels={RUN_LABEL: run_prefix},
            docker_url=proxy_url,
            images_dir=images_dir,
            **settings,
        )
    )


class Steps(list[str]):
    def __call__(self, progress: int, message: str, output: tuple[str, ...] = ()) -> None:
        self.append(message)


@pytest.mark.parametrize("isolation", ["shared", "per_user"])
async def test_the_hub_builds_starts_and_stops_a_server_through_the_proxy(
    proxy_url: str,
    run_prefix: str,
    images_dir: Path,
    echo_command: list[str],
    isolation: str,
    docker_client: docker.DockerClient,
) -> None:
    spawner = spawner_for(proxy_url, run_prefix, images_dir, isolation=isolation)
    tag = f"{run_prefix}-tiny-{isolation.replace('_', '')}:latest"
    image = ImageSpec(
        name="tiny",
        image=tag,
        build="tiny",
        jupyter=False,
        command=echo_command,
        port=8000,
        volume_mount="/data",
        mem_limit="128m",
    )
    request = SpawnRequest("alice", names.user_slug("alice"), image, "/user/alice/", secrets.token_urlsafe(16))
    steps = Steps()
    try:
        handle = await spawner.start(request, steps)
        assert any("Step 2/2" in step for step in steps), steps  # the build's progress streamed back
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{handle.url}/x", headers={"Authorization": f"token {request.token}"}) as answer:
                assert answer.status == 200
        assert "echo server listening" in await spawner.logs(handle)
        assert [info.username for info in await spawner.list_servers()] == ["alice"]
        await spawner.stop(handle)
        assert not docker_client.containers.list(all=True, filters={"name": handle.container_name})
        if isolation == "shared":  # the network pruned meanwhile: the proxy refuses the create, the hub remakes it
            docker_client.networks.get(spawner.settings.network).remove()
            again = await spawner.start(request, Steps())
            await spawner.stop(again)
        await spawner.remove_data(handle.volume_name)
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(handle.volume_name)
    finally:
        await spawner.close()
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def refused(call: object) -> str:
    with pytest.raises(docker.errors.APIError) as failure:
        call()  # type: ignore[operator]
    assert failure.value.status_code == 403, failure.value
    return str(failure.value.explanation)


def test_calls_that_reach_the_host_are_refused(
    through_proxy: docker.DockerClient,
    docker_client: docker.DockerClient,
    base_image: str,
    run_prefix: str,
) -> None:
    labels = {"hub.managed": "true", RUN_LABEL: run_prefix}
    server = through_proxy.containers.run(
        base_image,
        ["sleep", "60"],
        name=f"{run_prefix}-px-ok",
        labels=labels,
        detach=True,
        init=True,
        network_disabled=True,  # Docker's default bridge is not a network the hub's containers join
    )
    assert server.status in ("created", "running")

    assert "exec" in refused(lambda: through_proxy.api.exec_create(server.id, "id"))
    assert "Privileged" in refused(
        lambda: through_proxy.containers.create(
            base_image, "id", name=f"{run_prefix}-px-priv", labels=labels, privileged=True
        )
    )
    assert "host path" in refused(
        lambda: through_proxy.containers.create(
            base_image,
            "id",
            name=f"{run_prefix}-px-sock",
            labels=labels,
            volumes={DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "rw"}},
        )
    )
    assert "host path" in refused(
        lambda: through_proxy.containers.create(
            base_image, "id", name=f"{run_prefix}-px-root", labels=labels, volumes={"/": {"bind": "/host"}}
        )
    )
    assert "namespace" in refused(
        lambda: through_proxy.containers.create(
            base_image, "id", name=f"{run_prefix}-px-pid", labels=labels, pid_mode="host"
        )
    )
    assert "log driver" in refused(  # the daemon would send the log to any address, from the host's network
        lambda: through_proxy.containers.create(
            base_image,
            "id",
            name=f"{run_prefix}-px-log",
            labels=labels,
            log_config=docker.types.LogConfig(type="syslog", config={"syslog-address": "udp://127.0.0.1:9"}),
        )
    )
    assert "driver options" in refused(
        lambda: through_proxy.volumes.create(
            f"{run_prefix}-px-hostdir", driver_opts={"type": "none", "o": "bind", "device": "/"}
        )
    )
    assert "label" in refused(lambda: through_proxy.containers.create(base_image, "id", name=f"{run_prefix}-px-x"))

    # A volume made without the proxy as a folder of the host cannot be mounted through it.
    host_folder = docker_client.volumes.create(
        f"{run_prefix}-px-hostdir",
        labels={RUN_LABEL: run_prefix},
        driver_opts={"type": "none", "o": "bind", "device": "/etc"},
    )
    try:
        assert "driver options" in refused(
            lambda: through_proxy.containers.create(
                base_image,
                "id",
                name=f"{run_prefix}-px-vol",
                labels=labels,
                volumes={host_folder.name: {"bind": "/x"}},
                network_disabled=True,
            )
        )
        assert through_proxy.volumes.get(host_folder.name).attrs["Options"] == {}  # not the hub's: no options shown
    finally:
        host_folder.remove(force=True)

    # Containers the hub did not make (Traefik, the proxy itself) cannot be stopped or removed through it.
    other = docker_client.containers.run(
        base_image,
        ["sleep", "60"],
        name=f"{run_prefix}-px-other",
        labels={RUN_LABEL: run_prefix},
        detach=True,
        init=True,
    )
    assert "not a container this hub made" in refused(lambda: through_proxy.containers.get(other.id).stop(timeout=0))
    assert "not a container this hub made" in refused(lambda: through_proxy.api.remove_container(other.id, force=True))
    # Nor can their load, their log or their files be read through it (stats were open for every container).
    assert "not a container this hub made" in refused(lambda: through_proxy.api.stats(other.id, stream=False))
    assert "not a container this hub made" in refused(lambda: through_proxy.api.logs(other.id))
    assert "not a container this hub made" in refused(lambda: through_proxy.api.get_archive(other.id, "/volume"))
    other.reload()
    assert other.status == "running"
    assert through_proxy.api.stats(server.id, stream=False)["id"] == server.id  # the hub's own: allowed

    # Files are copied out of and into backup helpers only: never a server, never a helper that ran.
    assert "backup helper" in refused(lambda: through_proxy.api.get_archive(server.id, "/volume"))
    assert "backup helper" in refused(lambda: through_proxy.api.put_archive(server.id, "/", b""))
    helper_labels = {**labels, "hub.backup-helper": "true"}
    helper = through_proxy.containers.create(
        base_image, ["sleep", "60"], name=f"{run_prefix}-px-h", labels=helper_labels, network_disabled=True
    )
    assert "never started" in refused(lambda: through_proxy.api.start(helper.id))
    assert "/volume" in refused(lambda: through_proxy.api.get_archive(helper.id, "/etc"))
    started = docker_client.containers.run(  # made where the socket is: a helper that ran
        base_image, ["sleep", "60"], name=f"{run_prefix}-px-hr", labels=helper_labels, detach=True, init=True
    )
    assert "has been started" in refused(lambda: through_proxy.api.get_archive(started.id, "/volume"))
    host_path = docker_client.containers.create(
        base_image, ["true"], name=f"{run_prefix}-px-hb", labels=helper_labels, volumes={"/etc": {"bind": "/volume"}}
    )
    assert "host path" in refused(lambda: through_proxy.api.get_archive(host_path.id, "/volume"))
    foreign = docker_client.volumes.create(f"{run_prefix}-px-foreign", labels={RUN_LABEL: run_prefix})  # not the hub's
    reader = docker_client.containers.create(  # made where the socket is: the proxy refuses to make it
        base_image,
        ["true"],
        name=f"{run_prefix}-px-hf",
        labels=helper_labels,
        volumes={foreign.name: {"bind": "/volume"}},
    )
    assert "not one this hub made" in refused(lambda: through_proxy.api.get_archive(reader.id, "/volume"))
    assert "not one this hub made" in refused(  # nor does any other container of the hub mount it
        lambda: through_proxy.containers.create(
            base_image,
            ["true"],
            name=f"{run_prefix}-px-hv",
            labels=labels,
            volumes={foreign.name: {"bind": "/data"}},
            network_disabled=True,
        )
    )
    # Nor a helper with the hub's volume at /volume and another program's below it (copied along with it).
    ours = through_proxy.volumes.create(f"{run_prefix}-px-ours", labels=labels)
    pair = docker_client.containers.create(  # made where the socket is, as above
        base_image,
        ["true"],
        name=f"{run_prefix}-px-h2",
        labels=helper_labels,
        volumes={ours.name: {"bind": "/volume"}, foreign.name: {"bind": "/volume/x"}},
    )
    assert "exactly one volume" in refused(lambda: through_proxy.api.get_archive(pair.id, "/volume"))
    assert "exactly one volume" in refused(lambda: through_proxy.api.put_archive(pair.id, "/", b""))
    for container in (helper, started, host_path, reader, pair):
        container.remove(force=True)
    foreign.remove()
    ours.remove()

    assert not docker_client.containers.list(all=True, filters={"name": f"{run_prefix}-px-priv"})
    server.remove(force=True)  # the hub's own container: allowed
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(server.id)


async def test_users_files_are_backed_up_and_restored_through_the_proxy(
    proxy_url: str, run_prefix: str, base_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """`hub backup --volumes` and `hub restore --volumes` as under docker compose with the socket proxy: a user's
    file and a removed account's kept volume come back."""
    prefix = f"{run_prefix}-bp"
    settings = Settings(
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        images=[{"name": "lab", "image": base_image}],  # type: ignore[list-item]
        spawner={"prefix": prefix, "extra_labels": {RUN_LABEL: run_prefix}, "docker_url": proxy_url},  # type: ignore[arg-type]
    )
    alice, bob = f"{prefix}-vol-alice", f"{prefix}-vol-bob"
    engine, sessions = await open_database(settings.db_url)
    async with sessions.begin() as session:
        session.add(User(name="alice", password_hash="x", volume_name=alice))
    await engine.dispose()
    for volume, user, text in ((alice, "alice", "chapter 1"), (bob, "bob", "notes of bob")):  # bob was removed
        docker_client.volumes.create(
            volume, labels=names.labels(prefix, user, names.user_slug(user), {RUN_LABEL: run_prefix})
        )
        script = f"echo '{text}' > /v/notes.txt && ln -s /usr/bin/python3 /v/python && chown -R 1000:100 /v"
        docker_client.containers.run(base_image, ["sh", "-c", script], volumes={volume: {"bind": "/v"}}, remove=True)

    outcome = await backup(settings, tmp_path / "backup", with_volumes=True, image=base_image)
    assert outcome.problem is None, outcome.lines
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert [(v["name"], v["owners"], v["orphan"]) for v in manifest["volumes"]] == [
        (alice, ["alice"], False),
        (bob, ["bob"], True),
    ]

    for volume in (alice, bob):
        docker_client.volumes.get(volume).remove()
    shutil.rmtree(tmp_path / "data")
    said = await restore(settings, tmp_path / "backup", with_volumes=True, force=False, image=base_image)
    assert f"volume {bob} put back (no account names it: a removed account's kept files)" in said
    for volume, text in ((alice, "chapter 1"), (bob, "notes of bob")):
        shown = docker_client.containers.run(
            base_image,
            ["sh", "-c", "cat /v/notes.txt && stat -c '%u:%g' /v/notes.txt && readlink /v/python"],
            volumes={volume: {"bind": "/v"}},
            remove=True,
        )
        assert shown.decode().splitlines() == [text, "1000:100", "/usr/bin/python3"]
        assert docker_client.volumes.get(volume).attrs["Labels"]["hub.prefix"] == prefix
    assert not docker_client.containers.list(all=True, filters={"label": "hub.backup-helper"})


def test_other_programs_containers_are_not_read_or_joined_through_the_proxy(
    through_proxy: docker.DockerClient, docker_client: docker.DockerClient, base_image: str, run_prefix: str
) -> None:
    """Security fix: any container's environment (another program's secrets) could be read through the proxy,
    and any container joined to or taken off any network."""
    labels = {"hub.managed": "true", RUN_LABEL: run_prefix}
    secret = "OTHER_APP_PASSWORD=hunter2"
    home = through_proxy.networks.create(f"{run_prefix}-px-home", labels=labels)
    ours = through_proxy.containers.run(
        base_image,
        ["sleep", "60"],
        name=f"{run_prefix}-px-ours",
        labels=labels,
        environment=["MINE=1"],
        detach=True,
        network=home.name,
    )
    other = docker_client.containers.run(
        base_image,
        ["sleep", "60"],
        name=f"{run_prefix}-px-app",
        labels={RUN_LABEL: run_prefix},
        environment=[secret],
        detach=True,
        init=True,
    )
    hub_net = through_proxy.networks.create(f"{run_prefix}-px-net", labels=labels)
    other_net = docker_client.networks.create(f"{run_prefix}-px-othernet", labels={RUN_LABEL: run_prefix})
    try:
        listed = {
            c.name for c in through_proxy.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_prefix}"})
        }
        assert ours.name in listed and other.name not in listed
        seen = through_proxy.api.inspect_container(other.name)
        assert seen["Id"] == other.id and seen["State"]["Running"] and "bridge" in seen["NetworkSettings"]["Networks"]
        assert "hunter2" not in json.dumps(seen) and "Env" not in seen["Config"]
        assert "MINE=1" in through_proxy.api.inspect_container(ours.id)["Config"]["Env"]
        assert "Links" in refused(  # a legacy link would hand the other's environment to a container of the hub's
            lambda: through_proxy.containers.create(
                base_image, ["env"], name=f"{run_prefix}-px-link", labels=labels, links={other.name: "app"}
            )
        )

        assert "connect-container" in refused(
            lambda: through_proxy.api.connect_container_to_network(other.id, hub_net.id)
        )
        assert "not a network this hub made" in refused(
            lambda: through_proxy.api.connect_container_to_network(ours.id, other_net.id)
        )
        assert "not a network this hub made" in refused(
            lambda: through_proxy.api.disconnect_container_from_network(other.id, "bridge", force=True)
        )
        through_proxy.api.connect_container_to_network(ours.name, hub_net.name)
        through_proxy.api.disconnect_container_from_network(ours.name, hub_net.name)
        with serving_proxy(joinable=(other.name,)) as url:  # as spawner.connect_containers names Traefik
            told = docker.DockerClient(base_url=url)
            try:
                told.api.connect_container_to_network(other.name, hub_net.name)
                assert hub_net.name in docker_client.api.inspect_container(other.id)["NetworkSettings"]["Networks"]
                assert "connect-container" in refused(  # a proxy not told of it does not take it off either
                    lambda: through_proxy.api.disconnect_container_from_network(other.id, hub_net.id, force=True)
                )
                told.api.disconnect_container_from_network(other.name, hub_net.name, force=True)
            finally:
                told.close()
    finally:
        for container in (ours, other):
            container.remove(force=True)
        for network in (hub_net, other_net, home):
            network.remove()


def test_other_programs_events_are_not_seen_through_the_proxy(
    through_proxy: docker.DockerClient, docker_client: docker.DockerClient, base_image: str, run_prefix: str
) -> None:
    """Security fix: Docker's event stream showed every container's labels (another program's secrets among
    them), name and image, and every exec's command line."""
    since = int(time.time()) - 1
    ours = through_proxy.containers.run(
        base_image,
        ["true"],
        name=f"{run_prefix}-px-evours",
        labels={"hub.managed": "true", RUN_LABEL: run_prefix},
        detach=True,
        network_disabled=True,
    )
    other = docker_client.containers.run(
        base_image,
        ["true"],
        name=f"{run_prefix}-px-evapp",
        labels={RUN_LABEL: run_prefix, "com.example.password": "hunter2"},
        detach=True,
    )
    try:
        for container in (ours, other):
            container.wait(timeout=30)
        until = int(time.time()) + 1
        events = list(through_proxy.events(since=since, until=until, decode=True))
        actors = {(event.get("Actor") or {}).get("ID") for event in events}
        assert ours.id in actors and other.id not in actors
        assert "hunter2" not in json.dumps(events)
        asked = {"type": ["container"], "event": ["die"], "label": [f"{RUN_LABEL}={run_prefix}"]}  # as the hub asks
        asked["container"] = [ours.id, other.id]  # not the other tests' containers, which die meanwhile
        died = list(through_proxy.events(since=since, until=until, filters=asked, decode=True))
        assert [event["Actor"]["ID"] for event in died] == [ours.id]  # its own filters and the proxy's, both
    finally:
        for container in (ours, other):
            container.remove(force=True)


def test_new_containers_join_only_the_hubs_networks(
    through_proxy: docker.DockerClient, docker_client: docker.DockerClient, base_image: str, run_prefix: str
) -> None:
    """Security fix: a container (or service) could be made on any network, such as another program's internal
    one, with an alias there that takes over one of its names; or on Docker's default bridge beside other
    programs' containers."""
    labels = {"hub.managed": "true", RUN_LABEL: run_prefix}
    other_net = docker_client.networks.create(f"{run_prefix}-px-theirs", labels={RUN_LABEL: run_prefix})
    hub_net = through_proxy.networks.create(f"{run_prefix}-px-mine", labels=labels)
    made: list[str] = []
    try:

        def create(name: str, **options: object) -> None:
            made.append(f"{run_prefix}-px-{name}")
            through_proxy.containers.create(base_image, ["true"], name=made[-1], labels=labels, **options)

        assert "neither one this hub made" in refused(lambda: create("n1", network=other_net.name))
        assert "default bridge" in refused(lambda: create("n2"))
        assert "default bridge" in refused(lambda: create("n3", network="bridge"))
        endpoint = {other_net.name: through_proxy.api.create_endpoint_config(aliases=["db"])}
        assert "aliases" in refused(  # an alias on a network: another program's name, answered by the hub's
            lambda: through_proxy.api.create_container(
                base_image,
                ["true"],
                name=f"{run_prefix}-px-n4",
                labels=labels,
                host_config=through_proxy.api.create_host_config(network_mode=hub_net.name),
                networking_config=through_proxy.api.create_networking_config(endpoint),
            )
        )
        create("n5", network=hub_net.name)  # the hub's own network, and no network at all: allowed
        create("n6", network_disabled=True)
        with serving_proxy(networks=(other_net.name,)) as url:  # as compose's proxy is told the users' network
            told = docker.DockerClient(base_url=url)
            try:
                made.append(f"{run_prefix}-px-n7")
                told.containers.create(base_image, ["true"], name=made[-1], labels=labels, network=other_net.name)
            finally:
                told.close()
        modes = {}
        for name in made:
            with contextlib.suppress(docker.errors.NotFound):
                modes[name] = docker_client.api.inspect_container(name)["HostConfig"]["NetworkMode"]
        assert modes == {
            f"{run_prefix}-px-n5": hub_net.name,
            f"{run_prefix}-px-n6": "default",
            made[-1]: other_net.name,
        }
    finally:
        for name in made:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.containers.get(name).remove(force=True)
        for network in (hub_net, other_net):
            network.remove()
