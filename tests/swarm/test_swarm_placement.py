"""Where a user's files are on a Swarm, and images on every node: on the one-node Swarm, through the socket proxy.

A new volume's node is recorded when its server first runs, and later starts are pinned there; a pinned node that
is gone fails the start in plain words until an admin runs ``hub swarm-unpin``. The pre-pull job runs the image on
every node (here: one) and reports each node's progress. Registry credentials go with every service created.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import docker
import docker.errors
import pytest

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.spawner import SpawnRequest
from hub.swarm_placement import VolumePins, unpin_user
from hub.swarm_prepull import NodePull, prepull_name
from hub.swarm_spawner import SwarmSpawner
from tests.fixtures.docker import RUN_LABEL
from tests.fixtures.swarm import echo_image, swarm_settings
from tests.integration.test_socket_proxy import Steps, proxy_url, through_proxy

pytestmark = [pytest.mark.docker]
__all__ = ["proxy_url", "through_proxy"]  # fixtures used here
GONE_NODE = "zzzzzzzzzzzzzzzzzzzzzzzzz"  # a node ID no Swarm has


def request_for(user: str, image: ImageSpec) -> SpawnRequest:
    return SpawnRequest(user, names.user_slug(user), image, f"/user/{user}/", secrets.token_urlsafe(16))


async def test_a_volume_is_pinned_to_the_node_where_it_first_ran(
    proxy_url: str,
    swarm: str,
    run_prefix: str,
    base_image: str,
    echo_command: list[str],
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = swarm_settings(proxy_url, run_prefix, swarm, "pl")
    spawner = SwarmSpawner(settings)
    here = str(docker_client.info()["Swarm"]["NodeID"])
    request = request_for("pinned", echo_image(base_image, echo_command))
    try:
        handle = await spawner.start(request, Steps())  # a new volume: any node, then recorded
        pins = VolumePins(lambda: docker_client, settings.prefix, {})
        assert pins.node_of(handle.volume_name) == here
        volume = docker_client.volumes.get(handle.volume_name)  # made by the node from the mount, labels kept
        assert volume.attrs["Labels"]["hub.username"] == "pinned"
        first = docker_client.services.get(handle.container_id).attrs["Spec"]["TaskTemplate"]
        assert not (first.get("Placement") or {}).get("Constraints")
        await spawner.stop(handle)

        handle = await spawner.start(request, Steps())  # pinned now: to this node
        template = docker_client.services.get(handle.container_id).attrs["Spec"]["TaskTemplate"]
        assert template["Placement"]["Constraints"] == [f"node.id=={here}"]
        await spawner.stop(handle)

        # The record says the files are on a node that left the Swarm: the start says so in plain words.
        pins.unpin_volume(handle.volume_name)
        pins.pin(handle.volume_name, GONE_NODE, "pinned")
        with pytest.raises(SpawnError) as refused:
            await spawner.start(request, Steps())
        assert "Your files are on the machine" in refused.value.user_message
        assert "not available" in refused.value.user_message
        assert "hub swarm-unpin pinned" in refused.value.detail
        assert not docker_client.services.list(filters={"name": names.container_name(settings.prefix, request.slug)})

        # An admin lets the next start go anywhere; the volume on this node is found and pinned again.
        assert unpin_user(settings.model_copy(update={"docker_url": None}), "pinned") == 0
        assert "1 volume(s) no longer tied to a node" in capsys.readouterr().out
        handle = await spawner.start(request, Steps())
        assert pins.node_of(handle.volume_name) == here
        await spawner.stop(handle)
        await spawner.remove_data(handle.volume_name)
        assert pins.node_of(handle.volume_name) is None
    finally:
        await spawner.close()


def test_a_record_of_a_node_cannot_carry_anything_else(through_proxy: docker.DockerClient, run_prefix: str) -> None:
    labels = {"hub.managed": "true", RUN_LABEL: run_prefix}
    with pytest.raises(docker.errors.APIError) as refused:
        through_proxy.configs.create(name=f"{run_prefix}-pin-{'0' * 24}", data=b"#!/bin/sh\nid\n", labels=labels)
    assert refused.value.status_code == 403
    assert "one node ID" in str(refused.value)


async def test_the_pre_pull_job_reports_each_nodes_progress_and_goes(
    proxy_url: str, swarm: str, run_prefix: str, base_image: str, docker_client: docker.DockerClient
) -> None:
    settings = swarm_settings(proxy_url, run_prefix, swarm, "pl")
    spawner = SwarmSpawner(settings)
    seen: list[tuple[str, int | None]] = []
    image = ImageSpec(name="base", image=base_image, jupyter=False, port=8000)
    try:
        assert spawner.images.spread is not None
        await spawner.images.spread(image, lambda message, percent: seen.append((str(message), percent)))
    finally:
        await spawner.close()
    assert seen[0][1] == 0
    assert seen[-1] == (f"Fetching {base_image} onto every node: 1 of 1 nodes done", 100)
    assert not docker_client.services.list(filters={"name": prepull_name(settings.prefix, base_image)})


async def test_a_node_that_cannot_fetch_the_image_is_named(
    proxy_url: str, swarm: str, run_prefix: str, docker_client: docker.DockerClient
) -> None:
    settings = swarm_settings(proxy_url, run_prefix, swarm, "pl")
    missing = f"{run_prefix}-nowhere.invalid/missing:1"
    client = docker.DockerClient(base_url=proxy_url)
    pull = NodePull(settings, lambda: client, _call, {RUN_LABEL: run_prefix})
    try:
        with pytest.raises(SpawnError) as failed:
            await pull.run(ImageSpec(name="missing", image=missing, jupyter=False, port=8000), lambda m, p: None)
    finally:
        client.close()
    hostname = str(docker_client.info()["Name"])
    assert f"could not be fetched onto 1 of the cluster's 1 nodes ({hostname}: " in failed.value.user_message
    assert not docker_client.services.list(filters={"name": prepull_name(settings.prefix, missing)})


async def _call(func: Any, *args: Any, **kwargs: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


def test_registry_credentials_go_with_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The header the manager hands to the node that pulls; from the environment, never the config file."""
    monkeypatch.setenv("HUB_REGISTRY_USER", "hub-puller")
    monkeypatch.setenv("HUB_REGISTRY_PASSWORD", "s3cret")
    settings = SpawnerSection(
        backend="swarm", prefix="hub", registry="registry.example:5000", docker_url="unix:///nonexistent.sock"
    )
    spawner = SwarmSpawner(settings)
    real_client = docker.DockerClient
    monkeypatch.setattr(docker, "DockerClient", lambda **kwargs: real_client(version="1.41", **kwargs))
    client = spawner.client()  # as the hub makes it: with the credentials
    headers: list[dict[str, str]] = []

    class Answer:
        def raise_for_status(self) -> None:
            pass

        def json(self) -> dict[str, str]:
            return {"ID": "made"}

    def post(url: str, **kwargs: Any) -> Answer:
        headers.append(kwargs.get("headers") or {})
        return Answer()

    monkeypatch.setattr(client.api, "_post", post)
    image = ImageSpec.model_validate({"name": "lab", "image": "registry.example:5000/lab:1"})
    spawner._create_service(request_for("alice", image), "hub-user-alice", "hub-vol-alice", {"hub.managed": "true"})
    sent = json.loads(base64.urlsafe_b64decode(headers[0]["X-Registry-Auth"]))
    assert sent["username"] == "hub-puller" and sent["password"] == "s3cret"
    assert sent["serveraddress"] == "registry.example:5000"


def test_a_registry_without_credentials_stops_the_hub_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.config import ConfigError

    monkeypatch.delenv("HUB_REGISTRY_USER", raising=False)
    monkeypatch.delenv("HUB_REGISTRY_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="HUB_REGISTRY_USER"):
        SwarmSpawner(SpawnerSection(backend="swarm", registry="registry.example:5000"))


async def test_with_a_volume_driver_any_node_mounts_the_files_and_nothing_is_pinned(
    proxy_url: str,
    swarm: str,
    run_prefix: str,
    base_image: str,
    echo_command: list[str],
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local driver with per-volume options (tmpfs here, standing in for NFS), told to the proxy as well."""
    options = {"type": "tmpfs", "device": "{volume}", "o": "size=16m"}
    monkeypatch.setenv("HUB_SPAWNER__VOLUME_DRIVER", "local")
    monkeypatch.setenv("HUB_SPAWNER__VOLUME_DRIVER_OPTIONS", json.dumps(options))
    settings = swarm_settings(proxy_url, run_prefix, swarm, "pl", volume_driver="local", volume_driver_options=options)
    spawner = SwarmSpawner(settings)
    request = request_for("shared", echo_image(base_image, echo_command))
    try:
        handle = await spawner.start(request, Steps())
        template = docker_client.services.get(handle.container_id).attrs["Spec"]["TaskTemplate"]
        assert not (template.get("Placement") or {}).get("Constraints")
        volume = docker_client.volumes.get(handle.volume_name)
        assert volume.attrs["Options"] == {**options, "device": handle.volume_name}
        assert VolumePins(lambda: docker_client, settings.prefix, {}).node_of(handle.volume_name) is None
        await spawner.stop(handle)
        await spawner.remove_data(handle.volume_name)
    finally:
        await spawner.close()


def test_registry_credentials_can_come_from_a_docker_config_file(tmp_path: Any) -> None:
    from hub.registry import registry_auth

    auth = base64.b64encode(b"robot:t0ken").decode()
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"registry.example:5000": {"auth": auth}}}))
    configs = registry_auth(SpawnerSection(backend="swarm", registry_config=path), environ={})
    assert configs is not None
    found = configs.resolve_authconfig("registry.example:5000")
    assert found is not None and (found["username"], found["password"]) == ("robot", "t0ken")


def test_a_registry_setting_that_cannot_work_stops_the_hub_in_plain_words(tmp_path: Any) -> None:
    from hub.config import ConfigError
    from hub.registry import registry_auth

    empty = tmp_path / "config.json"
    empty.write_text(json.dumps({"auths": {}}))
    with pytest.raises(ConfigError, match="no registry credentials"):
        registry_auth(SpawnerSection(backend="swarm", registry_config=empty), environ={})
    with pytest.raises(ConfigError, match="or spawner.registry_config"):  # which one would win is not guessed
        registry_auth(SpawnerSection(backend="swarm", registry="r.example:5000", registry_config=empty), environ={})
    with pytest.raises(ConfigError, match="HUB_REGISTRY_PASSWORD"):
        registry_auth(SpawnerSection(backend="swarm", registry="r.example:5000"), environ={"HUB_REGISTRY_USER": "u"})
