"""Fetches an image onto every node of the Swarm before anyone needs it there, with progress per node.

The hub prepares each offered image on its own node first (hub/images.py: found, built or pulled). With
``spawner.backend: swarm`` it then runs a *global job*: a service that runs one task on every node, each
running the image with the no-op command ``true``. To run it, each node pulls the image (from
``spawner.registry``, with the credentials the SDK sends along), so the job's tasks are the progress: a task
whose container was made has the image on its node. A task the node refused ("No such image", "pull access
denied") names the node that could not fetch it. The job's service is removed once every task has ended.

On a one-node Swarm the job runs on that node only, where the image already is: it ends within a second or two.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types

from hub.config import ImageSpec, SpawnerSection
from hub.errors import SpawnError
from hub.i18n import L_

log = logging.getLogger(__name__)
PREPULL_LABEL = "hub.prepull"
NOOP = ["true"]
"""The job's command: any image has it; when it has not, the task fails *after* its container was made,
which still means the image is on the node."""
NOBODY = "65534:65534"
POLL_SECONDS = 1.0
NO_TASKS_SECONDS = 30.0
"""A job that still has no task after this long (no node can run it) fails."""
ENDED = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
MEMORY = 64 * 1024 * 1024
PIDS = 16

Call = Callable[..., Awaitable[Any]]
Progress = Callable[[str, int | None], None]


def prepull_name(prefix: str, image: str) -> str:
    return f"{prefix}-prepull-{hashlib.sha256(image.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class NodeTask:
    """The newest task of the job on one node."""

    node_id: str
    state: str
    error: str
    has_container: bool

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def pulled(self) -> bool:
        """The node has the image: its container was made (it may have failed to run ``true``: no matter)."""
        return self.state == "complete" or (self.ended and self.has_container)


def node_tasks(tasks: list[dict[str, Any]]) -> dict[str, NodeTask]:
    """The newest task per node (a global job makes one task per node)."""
    newest: dict[str, dict[str, Any]] = {}
    for task in tasks:
        node = str(task.get("NodeID") or "")
        if not node:
            continue
        index = (task.get("Version") or {}).get("Index", 0)
        if node not in newest or index > (newest[node].get("Version") or {}).get("Index", 0):
            newest[node] = task
    found = {}
    for node, task in newest.items():
        status = task.get("Status") or {}
        container = (status.get("ContainerStatus") or {}).get("ContainerID")
        found[node] = NodeTask(node, str(status.get("State") or "new"), str(status.get("Err") or ""), bool(container))
    return found


def job_labels(prefix: str, extra_labels: dict[str, str]) -> dict[str, str]:
    return {"hub.managed": "true", "hub.prefix": prefix, PREPULL_LABEL: "true", **extra_labels}


class NodePull:
    """Runs the pre-pull job of one image at a time per image and reports how many nodes have it."""

    def __init__(
        self,
        settings: SpawnerSection,
        client: Callable[[], docker.DockerClient],
        call: Call,
        extra_labels: dict[str, str],
    ) -> None:
        self.settings = settings
        self.client = client
        self.call = call
        self.extra_labels = extra_labels

    async def run(self, image: ImageSpec, progress: Progress) -> None:
        """Return once every node has the image; raise SpawnError naming the nodes that could not fetch it."""
        name = prepull_name(self.settings.prefix, image.image)
        started = time.monotonic()
        await self.call(self._remove, name)  # left over from a hub that stopped midway
        progress(L_("Fetching %(image)s onto every node of the cluster", image=image.image), 0)
        service_id = await self.call(self._create, image, name)
        try:
            tasks = await self._follow(image, service_id, progress)
        finally:
            await asyncio.shield(self.call(self._remove, service_id))
        failed = [task for task in tasks.values() if not task.pulled]
        if failed:
            hosts = await self.call(self._hostnames, [task.node_id for task in failed])
            reason = "; ".join(f"{hosts[task.node_id]}: {task.error or task.state}" for task in failed)
            raise SpawnError(
                L_(
                    "The image %(image)s could not be fetched onto %(count)d of the cluster's %(total)d nodes "
                    "(%(reason)s). Servers placed there cannot start.",
                    image=image.image,
                    count=len(failed),
                    total=len(tasks),
                    reason=reason,
                ),
                f"pre-pull {image.image}: {reason}; set spawner.registry (and push the image there), or load the "
                "image on those nodes by hand",
            )
        log.info("%s is on all %d nodes (%.1fs)", image.image, len(tasks), time.monotonic() - started)

    async def _follow(self, image: ImageSpec, service_id: str, progress: Progress) -> dict[str, NodeTask]:
        began = time.monotonic()
        shown = (-1, -1)
        while True:
            tasks = node_tasks(await self.call(self.client().api.tasks, filters={"service": service_id}))
            done = sum(1 for task in tasks.values() if task.ended)
            if (done, len(tasks)) != shown and tasks:
                shown = (done, len(tasks))
                progress(
                    L_(
                        "Fetching %(image)s onto every node: %(done)d of %(total)d nodes done",
                        image=image.image,
                        done=done,
                        total=len(tasks),
                    ),
                    done * 100 // len(tasks),
                )
            if tasks and done == len(tasks):
                return tasks
            waited = time.monotonic() - began
            if not tasks and waited > NO_TASKS_SECONDS:
                raise SpawnError(
                    L_("No node of the cluster took the job that fetches %(image)s.", image=image.image),
                    f"pre-pull {image.image}: the global job has no task after {NO_TASKS_SECONDS:g}s",
                )
            if waited > self.settings.prepull_timeout:
                raise SpawnError(
                    L_(
                        "Fetching %(image)s onto every node took longer than %(seconds)g seconds: "
                        "%(done)d of %(total)d nodes done.",
                        image=image.image,
                        seconds=self.settings.prepull_timeout,
                        done=done,
                        total=len(tasks),
                    ),
                    f"pre-pull {image.image}: spawner.prepull_timeout reached",
                )
            await asyncio.sleep(POLL_SECONDS)

    def _create(self, image: ImageSpec, name: str) -> str:
        """The job exactly as hub/swarm_policy.py lets it through: no mounts, networks, ports or capabilities."""
        labels = job_labels(self.settings.prefix, self.extra_labels)
        container = docker.types.ContainerSpec(image.image, command=NOOP, user=NOBODY, labels=labels, cap_drop=["ALL"])
        resources = docker.types.Resources(mem_limit=MEMORY)
        resources.setdefault("Limits", {})["Pids"] = PIDS
        template = docker.types.TaskTemplate(
            container, resources=resources, restart_policy=docker.types.RestartPolicy(condition="none")
        )
        try:
            created = self.client().api.create_service(
                template, name=name, labels=labels, mode=docker.types.ServiceMode("global-job")
            )
        except docker.errors.APIError as exc:
            raise SpawnError(
                L_(
                    "The cluster refused the job that fetches %(image)s onto every node: %(reason)s",
                    image=image.image,
                    reason=exc.explanation,
                ),
                f"create pre-pull job {name}: {exc}",
            ) from exc
        return str(created["ID"])

    def _remove(self, name_or_id: str) -> None:
        try:
            self.client().api.remove_service(name_or_id)
        except docker.errors.NotFound:
            pass

    def _hostnames(self, node_ids: list[str]) -> dict[str, str]:
        names = {}
        for node_id in node_ids:
            try:
                node = self.client().api.inspect_node(node_id)
                names[node_id] = str((node.get("Description") or {}).get("Hostname") or node_id[:12])
            except docker.errors.APIError:
                names[node_id] = node_id[:12]
        return names


__all__ = ["NodePull", "NodeTask", "node_tasks", "prepull_name"]
