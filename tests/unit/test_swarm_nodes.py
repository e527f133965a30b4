"""A server whose Swarm node went away is reported lost, not left running (hub/swarm_nodes.py).

A real node failure needs several nodes: benchmarks/swarm_multinode.py kills a Docker-in-Docker worker for real.
Here a small stand-in for the manager's API answers as a manager does once a worker stopped answering: the node
``down``, its task still ``running`` with the desired state ``shutdown``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import docker.errors
import pytest

from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.i18n import translate, translations
from hub.servers import crash_message
from hub.spawner import ServerHandle, SpawnRequest
from hub.swarm_nodes import lost_message, lost_node
from hub.swarm_spawner import SwarmSpawner

WORKER = "w" * 25
OTHER = "o" * 25
REMOVED = "r" * 25
AWAY = "a" * 25


def node(state: str, hostname: str = "worker-1") -> dict[str, Any]:
    return {"ID": WORKER, "Description": {"Hostname": hostname}, "Status": {"State": state}}


def task(state: str, node_id: str = WORKER, exit_code: int | None = None, desired: str = "running") -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if exit_code is not None:
        status["ContainerStatus"] = {"ExitCode": exit_code}
    return {"ServiceID": "svc1", "NodeID": node_id, "DesiredState": desired, "Status": status, "Version": {"Index": 9}}


@pytest.mark.parametrize(
    ("the_task", "nodes", "lost"),
    [
        (task("running", desired="shutdown"), {WORKER: node("down")}, "worker-1"),
        (task("running"), {WORKER: node("disconnected")}, None),  # looking for a new manager: its tasks run on
        (task("starting"), {WORKER: None}, WORKER[:12]),  # the node was removed from the Swarm
        (task("orphaned"), {}, WORKER[:12]),  # Swarm gave the task up after its node was down for long
        (task("running"), {WORKER: node("ready")}, None),
        (task("running"), {WORKER: node("unknown")}, None),  # for a moment after a new leader: wait
        (task("running"), {}, None),  # the node could not be asked: nothing is decided
        (task("failed", exit_code=137), {WORKER: node("down")}, None),  # it exited: a crash with its exit code
        (task("pending", node_id=""), {}, None),  # never placed
        (None, {}, None),
    ],
)
def test_which_tasks_are_lost_with_their_node(
    the_task: dict[str, Any] | None, nodes: dict[str, Any], lost: str | None
) -> None:
    assert lost_node(the_task, nodes) == lost


def test_the_reason_says_where_the_files_are_and_is_translated() -> None:
    elsewhere = lost_message("worker-1", files_on_node=False)
    assert str(elsewhere) == (
        "The machine your server ran on stopped answering (node worker-1). Start it again to run it elsewhere."
    )
    assert "Your files are on that machine" in lost_message("worker-1", files_on_node=True)
    assert "(Knoten worker-1)" in translate(translations("de"), elsewhere)
    assert "(nœud worker-1)" in translate(translations("fr"), elsewhere)


class FakeManagerAPI:
    """The three reads the reconcile makes of a Swarm manager: one service per user (its task's ServiceID is the
    user's name) and the hub's image pre-pull job; a node not in ``nodes`` was removed from the Swarm (404), a
    node in ``unreachable`` cannot be asked right now (500)."""

    def __init__(self, tasks: list[dict[str, Any]], nodes: dict[str, dict[str, Any]], unreachable: str = "") -> None:
        self._tasks, self._nodes, self._unreachable = tasks, nodes, unreachable
        self.asked: list[str] = []

    def services(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        labels = {"hub.managed": "true", "hub.prefix": "t"}
        users = [
            {
                "ID": t["ServiceID"],
                "Spec": {"Name": f"t-{t['ServiceID']}", "Labels": {**labels, "hub.username": t["ServiceID"]}},
            }
            for t in self._tasks
        ]
        job = {"ID": "job", "Spec": {"Name": "t-prepull-1", "Labels": {**labels, "hub.prepull": "true"}}}
        return [*users, job]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self._tasks

    def inspect_node(self, node_id: str) -> dict[str, Any]:
        self.asked.append(node_id)
        if node_id == self._unreachable:
            raise docker.errors.APIError("rpc error: the swarm does not have a leader")
        if node_id not in self._nodes:
            raise docker.errors.NotFound("no such node")
        return self._nodes[node_id]


class FakeClient:
    def __init__(self, api: FakeManagerAPI) -> None:
        self.api = api


def servers_seen(api: FakeManagerAPI, volume_driver: str | None = None) -> dict[str, Any]:
    spawner = SwarmSpawner(SpawnerSection(backend="swarm", prefix="t", volume_driver=volume_driver))
    spawner._client = FakeClient(api)  # type: ignore[assignment]
    try:
        return {info.username: info for info in asyncio.run(spawner.list_servers())}
    finally:
        spawner._executor.shutdown()


def on(user: str, the_task: dict[str, Any]) -> dict[str, Any]:
    return {**the_task, "ServiceID": user}


@pytest.mark.parametrize("volume_driver", [None, "nfs"])
def test_list_servers_reports_the_servers_of_a_down_node_lost(volume_driver: str | None) -> None:
    api = FakeManagerAPI(
        [
            on("alice", task("running", desired="shutdown")),  # on the worker that went down
            on("bob", task("running", node_id=OTHER)),
            on("carol", task("starting", node_id=OTHER)),
            on("dave", task("running", node_id=REMOVED)),  # its node was removed (docker node rm)
            on("erin", task("failed", node_id=AWAY, exit_code=1)),  # crashed: its node is not asked about
        ],
        {WORKER: node("down"), OTHER: {**node("ready", "worker-2"), "ID": OTHER}},
    )
    found = servers_seen(api, volume_driver)
    assert set(found) == {"alice", "bob", "carol", "dave", "erin"}  # the job fetching images is no server
    assert found["bob"].running and not found["bob"].lost
    assert found["carol"].running and not found["carol"].lost
    assert not found["alice"].running
    assert "stopped answering (node worker-1)" in found["alice"].lost
    assert ("Your files are on that machine" in found["alice"].lost) == (volume_driver is None)
    assert not found["dave"].running and f"(node {REMOVED[:12]})" in found["dave"].lost
    assert not found["erin"].running and not found["erin"].lost and found["erin"].exit_code == 1
    assert sorted(api.asked) == sorted([WORKER, OTHER, REMOVED])  # one question per node, not per server
    # The hub's crash path (hub/servers.py) shows this reason instead of an exit code.
    assert crash_message(found["alice"], None) == found["alice"].lost


def test_a_node_the_manager_cannot_tell_about_right_now_loses_no_server() -> None:
    """Docker briefly away (a manager without a leader answers 500/503): nothing is decided this pass."""
    api = FakeManagerAPI([on("alice", task("running", node_id=OTHER))], {}, unreachable=OTHER)
    found = servers_seen(api)
    assert found["alice"].running and not found["alice"].lost


class NoDocker:
    """A start that goes on past the lost node would ask Docker for the server's address: fail at once instead."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the start went on and asked Docker for {name}")


class FakePins:
    def __init__(self, node: str | None) -> None:
        self.node = node

    def node_of(self, volume: str) -> str | None:
        return self.node


@pytest.mark.parametrize(("pinned", "files_on_node"), [(None, False), (WORKER, True)])
def test_a_start_waiting_on_a_node_that_goes_down_fails_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, pinned: str | None, files_on_node: bool
) -> None:
    """Its task stays ``running`` as last seen (the server did not answer yet), Swarm wants it shut down."""
    spawner = SwarmSpawner(SpawnerSection(backend="swarm", prefix="t"))
    spawner._client = NoDocker()  # type: ignore[assignment]
    monkeypatch.setattr(spawner, "_task_of", lambda service: task("running", desired="shutdown"))
    monkeypatch.setattr(spawner, "_nodes_of", lambda tasks: {WORKER: node("down")})
    monkeypatch.setattr(SwarmSpawner, "pins", property(lambda self: FakePins(pinned)))
    request = SpawnRequest("eve", "eve", ImageSpec(name="echo", image="x", jupyter=False), "/user/eve/", "secret")
    shown: list[str] = []
    try:
        with pytest.raises(SpawnError) as failed:
            handle = ServerHandle("svc1", "t-eve", "t-vol", "")
            asyncio.run(spawner._follow(request, handle, lambda p, m, o=(): shown.append(m), None))
    finally:
        spawner._executor.shutdown()
    assert failed.value.user_message == lost_message("worker-1", files_on_node=files_on_node)
