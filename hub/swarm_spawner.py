"""Starts each user's server as a one-replica Docker Swarm service (``spawner.backend: swarm``).

The same Docker API and images as the single-host backend (hub/docker_spawner.py, whose plumbing this reuses:
the SDK client off the event loop, image preparation, volumes), with these differences:

- a server is a service with one replica and restart policy ``none``: a crash is reported, never restarted;
- the service joins ``spawner.network`` as an attachable overlay network with endpoint mode ``dnsrr``, so it is
  reached by its name (service VIPs need IPVS, which some kernels lack; dnsrr also spares a hop);
- memory and CPUs become service limits *and* reservations, so Swarm places the server on a node with room;
  when no node has room the start fails in plain words instead of waiting;
- progress follows the task's states (pending, assigned, preparing, starting, running);
- a server whose node went down is reported lost, not running (hub/swarm_nodes.py);
- the labels are those of the containers (on the service and on its container spec), so restart adoption and
  reconcile (hub/reconcile.py) work on services.

``spawner.address: name`` (the hub and Traefik on the overlay network) is the setting for a real cluster.
``ip`` reaches the task's container through the node's ``docker_gwbridge`` address, which the host itself can
reach: for a single-node Swarm with the hub and Traefik on the host (as in the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

import aiohttp
import docker
import docker.errors
import docker.types
from docker.utils import parse_bytes

from hub import names
from hub.config import SpawnerSection
from hub.docker_spawner import (
    LOG_TAIL_LINES,
    SLOW_READY_POLL_SECONDS,
    DockerSpawner,
    container_command,
    container_environment,
    cpu_limit,
    memory_limit,
    readiness_url,
)
from hub.errors import SpawnError
from hub.gpus import GPU_LABEL, parse_gpu_label
from hub.i18n import L_, N_, Text
from hub.polling import SharedPace
from hub.port_probe import host_and_port, port_accepts
from hub.spawner import AddressKnown, Report, ServerHandle, ServerInfo, SpawnRequest
from hub.swarm_nodes import lost_message, lost_node
from hub.swarm_placement import VolumePins, constraint, start_node, volume_mount
from hub.swarm_prepull import PREPULL_LABEL, NodePull
from hub.swarm_tasks import (
    ENDED,
    TASK_PROGRESS,
    UNSCHEDULABLE,
    latest_task,
    task_container_id,
    task_error,
    task_exit_code,
    task_state,
    unschedulable_message,
)

log = logging.getLogger(__name__)

STATE_POLL_SECONDS = 0.5
"""How often a start reads its task's state from the Swarm manager when it is the only one; with N starts at once
each reads it N times less often, at most every STATE_POLL_MOST (hub/polling.py)."""
STATE_POLL_MOST = 2.0
ANSWER_POLL_SECONDS = 0.1
"""How often a running task's server is looked at until it answers (shared out in the same way, hub/polling.py)."""
UNSCHEDULABLE_GRACE_SECONDS = 3.0
"""A task that stays pending with "no suitable node" this long fails the start (servers being stopped may free
room within a moment)."""
GATEWAY_BRIDGE = "docker_gwbridge"
MAX_SERVICE_NAME = 63


def service_name(prefix: str, slug: str) -> str:
    """The container's name, cut to Swarm's 63 characters (a DNS label) with a digest of the slug when longer
    (named servers); servers are found by their labels, so only uniqueness matters."""
    name = names.container_name(prefix, slug)
    if len(name) <= MAX_SERVICE_NAME:
        return name
    digest = hashlib.sha256(slug.encode("utf-8")).hexdigest()[:16]
    return f"{name[: MAX_SERVICE_NAME - 18].rstrip('-')}--{digest}"


def service_resources(request: SpawnRequest, pids_limit: int) -> docker.types.Resources:
    """Limits (what the server may use) and equal reservations (what Swarm keeps free for it on its node)."""
    memory, cpus = memory_limit(request), cpu_limit(request)
    mem_bytes = int(parse_bytes(memory)) if memory else None
    nano_cpus = int(cpus * 1_000_000_000) if cpus else None
    resources = docker.types.Resources(
        cpu_limit=nano_cpus, mem_limit=mem_bytes, cpu_reservation=nano_cpus, mem_reservation=mem_bytes
    )
    resources.setdefault("Limits", {})["Pids"] = pids_limit
    return resources


class SwarmSpawner(DockerSpawner):
    """Users' servers as Swarm services; the hub must talk to a manager node."""

    def __init__(self, settings: SpawnerSection, extra_labels: dict[str, str] | None = None) -> None:
        super().__init__(settings, extra_labels)
        # The background preparation then fetches each image onto every node (hub/image_prep.py).
        self.images.spread = NodePull(settings, self.client, self._call, self.extra_labels).run
        self._task_looks = SharedPace(STATE_POLL_SECONDS, STATE_POLL_MOST)  # starts following their task
        self._answer_looks = SharedPace(ANSWER_POLL_SECONDS, SLOW_READY_POLL_SECONDS)  # running, not answering yet
        self._first_placements: dict[str, asyncio.Lock] = {}
        """Per volume: held by a start until its node is known and recorded, so that a second server on the same
        volume (a named server sharing the account's volume) waits and then goes to the same node."""

    # -- start ------------------------------------------------------------------------------
    async def start(
        self, request: SpawnRequest, report: Report, address_known: AddressKnown | None = None
    ) -> ServerHandle:
        if request.gpu_ids:
            raise SpawnError(
                N_(
                    "Your server needs a GPU, but this hub's cluster backend cannot give GPUs to servers yet. "
                    "Please choose a server without a GPU or tell an admin."
                ),
                "spawner.backend swarm does not pass GPUs (generic resources) yet",
            )
        await self.images.ensure(request.image, report)
        report(30, N_("Preparing the network and your storage"))
        labels, volume, volume_labels = self.labels_and_volume(request)
        name = service_name(self.settings.prefix, request.slug)
        async with self._network_lock:
            await self._call(self._ensure_overlay, labels)
        if self.settings.volume_driver:  # any node mounts the volume: nothing to record
            return await self._place(request, report, address_known, name, labels, volume, volume_labels)
        async with self._first_placements.setdefault(volume, asyncio.Lock()):  # one small lock per user's volume
            return await self._place(request, report, address_known, name, labels, volume, volume_labels)

    async def _place(
        self,
        request: SpawnRequest,
        report: Report,
        address_known: AddressKnown | None,
        name: str,
        labels: dict[str, str],
        volume: str,
        volume_labels: dict[str, str],
    ) -> ServerHandle:
        """Create the service where the user's files are (or anywhere, recording where it went) and follow it."""
        node, make_here = await self._call(self._volume_node, request.username, volume)
        if make_here:  # from the loop: the spawner's threads may all be busy
            await self._ensure_volume(volume, volume_labels)
        await self._call(self._remove_service, name)
        report(40, N_("Asking the cluster for a place for your server"))
        service_id = await self._call(
            self._create_service, request, name, volume, labels, volume_labels=volume_labels, node=node
        )
        handle = ServerHandle(service_id, name, volume, "")
        try:
            handle = await self._follow(request, handle, report, address_known)
        except BaseException:
            # Cancelled or failed after the service exists: never leave it running unknown to the hub.
            await asyncio.shield(self._call(self._remove_service, service_id))
            raise
        if node is None and not self.settings.volume_driver:
            await self._call(self._pin_where_it_runs, request.username, handle, volume)
        return handle

    # -- where a user's volume is (hub/swarm_placement.py) ----------------------------------
    @property
    def pins(self) -> VolumePins:
        return VolumePins(self.client, self.settings.prefix, self.extra_labels)

    def _volume_node(self, username: str, volume: str) -> tuple[str | None, bool]:
        """The node the server must run on (its volume's), or None: any node (a volume driver, or a new volume,
        which Swarm makes where the server lands). A pinned node that is down fails the start in plain words.
        Also whether the volume must be made on the hub's own node first (by the caller, on the event loop)."""
        if self.settings.volume_driver:
            return None, False
        return start_node(self.pins, username, volume, volume_here=lambda: self._volume_here(volume))

    def _volume_here(self, volume: str) -> bool:
        try:
            self.client().volumes.get(volume)
        except docker.errors.NotFound:
            return False
        return True

    def _pin_where_it_runs(self, username: str, handle: ServerHandle, volume: str) -> None:
        """Record the node of a new volume: the one its server runs on (a failure only loses the record)."""
        node = str((self._task_of(handle.container_id) or {}).get("NodeID") or "")
        if node:
            self.pins.record(volume, node, username)

    async def remove_data(self, volume: str) -> None:
        """The volume (on the hub's node; other nodes keep theirs until removed there) and the record of its node."""
        await super().remove_data(volume)
        try:
            await self._call(self.pins.unpin_volume, volume)
        except docker.errors.APIError as exc:
            log.warning("could not remove the record of the node of %s: %s", volume, exc)

    def _ensure_overlay(self, labels: dict[str, str]) -> None:
        """``spawner.network`` as an attachable overlay network (made once; a bridge of that name is refused)."""
        client = self.client()
        try:
            network = client.networks.get(self.settings.network)
        except docker.errors.NotFound:
            personal = ("hub.user", "hub.username", "hub.server")
            kept = {key: value for key, value in labels.items() if key not in personal}
            try:
                client.networks.create(
                    self.settings.network, driver="overlay", attachable=True, labels=kept, check_duplicate=True
                )
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise SpawnError(
                        N_("The cluster's network for servers could not be made. Please tell an admin."),
                        f"create overlay network {self.settings.network}: {exc.explanation}; is this node a "
                        "Swarm manager (docker swarm init)?",
                    ) from exc
            log.info("created overlay network %s", self.settings.network)
            return
        if network.attrs.get("Driver") != "overlay" or not network.attrs.get("Attachable"):
            raise SpawnError(
                N_("The cluster's network for servers is set up wrongly. Please tell an admin."),
                f"spawner.network {self.settings.network} is a {network.attrs.get('Driver')} network; "
                "spawner.backend swarm needs an attachable overlay network (or none of that name)",
            )

    def _create_service(
        self,
        request: SpawnRequest,
        name: str,
        volume: str,
        labels: dict[str, str],
        volume_labels: dict[str, str] | None = None,
        node: str | None = None,
    ) -> str:
        image = request.image
        all_labels = {**labels, "hub.image": image.name}
        container = docker.types.ContainerSpec(
            image.image,
            args=container_command(image, request.base_url),  # Args is CMD (Command would replace ENTRYPOINT)
            env=[f"{key}={value}" for key, value in container_environment(request).items()],
            user=image.user,
            labels=all_labels,
            mounts=[volume_mount(self.settings, image.volume_mount, volume, volume_labels)],
            stop_grace_period=self.settings.stop_timeout * 1_000_000_000,
            init=True,
            cap_drop=["ALL"],
        )
        log_driver = None
        if self.settings.log_driver != "default":
            log_driver = docker.types.DriverConfig(
                self.settings.log_driver,
                {"max-size": self.settings.log_max_size, "max-file": str(self.settings.log_max_files)},
            )
        template = docker.types.TaskTemplate(
            container,
            resources=service_resources(request, self.settings.pids_limit),
            restart_policy=docker.types.RestartPolicy(condition="none"),
            log_driver=log_driver,
            networks=[docker.types.NetworkAttachmentConfig(self.settings.network)],
            placement=docker.types.Placement(constraints=[constraint(node)]) if node else None,
        )
        try:
            created = self.client().api.create_service(
                template,
                name=name,
                labels=all_labels,
                mode=docker.types.ServiceMode("replicated", replicas=1),
                endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
            )
        except docker.errors.APIError as exc:
            raise SpawnError(
                L_(
                    "The cluster refused to start a server from the image %(image)s: %(reason)s",
                    image=image.image,
                    reason=exc.explanation,
                ),
                f"create service {name}: {exc}",
            ) from exc
        return str(created["ID"])

    async def _follow(
        self, request: SpawnRequest, handle: ServerHandle, report: Report, address_known: AddressKnown | None
    ) -> ServerHandle:
        """Report the task's states until it runs, then wait until the server answers; fail in plain words."""
        began = time.monotonic()
        deadline = began + self.settings.start_timeout
        unschedulable_since: float | None = None
        shown = ""
        url = ""
        headers = {"Authorization": f"token {request.token}"}
        next_state_check = 0.0
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            contextlib.AsyncExitStack() as counted,  # this start among the waiters of the looks it makes
        ):
            counted.enter_context(self._task_looks.waiting())
            while True:
                now = time.monotonic()
                if now >= next_state_check:
                    next_state_check = now + self._task_looks.pause()
                    task = await self._call(self._task_of, handle.container_id)
                    state, error = task_state(task), task_error(task)
                    if state in ENDED or (task or {}).get("DesiredState") == "shutdown":  # Swarm gave it up
                        lost = lost_node(task, await self._call(self._nodes_of, [task]))
                        if lost:  # a first start's volume is not tied to that node yet: it may go elsewhere
                            try:
                                pinned = await self._call(self.pins.node_of, handle.volume_name)
                            except docker.errors.APIError:  # the record cannot be read now: judge by the setting
                                pinned = None if self.settings.volume_driver else lost
                            raise SpawnError(
                                self._lost_text(
                                    lost, files_on_node=pinned is not None and not self.settings.volume_driver
                                ),
                                f"{handle.container_name}: node {lost} is down",
                            )
                    if state in ENDED:
                        raise await self._ended_error(handle, task)
                    if state == "pending" and any(words in error for words in UNSCHEDULABLE):
                        unschedulable_since = unschedulable_since or now
                        if now - unschedulable_since >= UNSCHEDULABLE_GRACE_SECONDS:
                            raise SpawnError(unschedulable_message(error), f"{handle.container_name}: {error}")
                    else:
                        unschedulable_since = None
                    if state != shown and state in TASK_PROGRESS:
                        shown = state
                        percent, words = TASK_PROGRESS[state]
                        report(percent, Text(words, names={"node": await self._node_name(task)}))
                    if state == "running" and not url:
                        url = await self._call(self._service_address, handle, task, request)
                        if url:
                            counted.enter_context(self._answer_looks.waiting())  # from now on it probes
                            handle = ServerHandle(handle.container_id, handle.container_name, handle.volume_name, url)
                            if address_known is not None:
                                address_known(handle)
                        elif now - began > self.settings.start_timeout / 2:  # a task that exited shows first
                            raise SpawnError(
                                N_("Your server started, but the hub cannot reach it. Please tell an admin."),
                                f"{handle.container_name}: task container {task_container_id(task)[:12]} has no "
                                f"{GATEWAY_BRIDGE} address on this node; with more than one node use "
                                "spawner.address: name (hub and Traefik on the overlay network)",
                            )
                if url and await self._answers(http, handle, request, headers):
                    return handle
                if time.monotonic() > deadline:
                    tail = await self.logs(handle, LOG_TAIL_LINES)
                    raise SpawnError(
                        L_(
                            "Your server did not answer within %(seconds)g seconds, so it was stopped.",
                            seconds=self.settings.start_timeout,
                        ),
                        f"{handle.container_name} in state {shown or 'new'}, not answering at {url or '-'}",
                        log_tail=tail,
                    )
                await asyncio.sleep(self._answer_looks.pause() if url else self._task_looks.pause() / 2)

    async def _answers(
        self, http: aiohttp.ClientSession, handle: ServerHandle, request: SpawnRequest, headers: dict[str, str]
    ) -> bool:
        host, port = host_and_port(handle.url)
        if not await port_accepts(host, port, timeout=1.0):
            return False
        try:
            async with http.get(readiness_url(handle.url, request), headers=headers, allow_redirects=False) as r:
                return r.status < 500
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def _ended_error(self, handle: ServerHandle, task: dict[str, Any] | None) -> SpawnError:
        state, error, code = task_state(task), task_error(task), task_exit_code(task)
        tail = await self.logs(handle, LOG_TAIL_LINES)
        if code is not None and state in ("failed", "complete"):  # the container ran and exited
            message = L_("Your server stopped while starting (exit code %(code)s).", code=code)
        else:
            message = L_("The cluster could not start your server: %(reason)s.", reason=error or state)
        return SpawnError(message, f"{handle.container_name} task {state}: {error}", log_tail=tail)

    async def _node_name(self, task: dict[str, Any] | None) -> str:
        node_id = (task or {}).get("NodeID") or ""
        if not node_id:
            return "?"
        try:
            node = await self._call(self.client().api.inspect_node, node_id)
        except docker.errors.APIError:
            return node_id[:12]
        return str((node.get("Description") or {}).get("Hostname") or node_id[:12])

    def _task_of(self, service: str) -> dict[str, Any] | None:
        return latest_task(self.client().api.tasks(filters={"service": service}))

    def _service_address(self, handle: ServerHandle, task: dict[str, Any] | None, request: SpawnRequest) -> str:
        """http://<service>:<port> (``address: name``), else the task container's address on this node's
        docker_gwbridge (single-node Swarm, hub and Traefik on the host); "" while it has none."""
        port = request.image.port
        if self.settings.address == "name":
            return f"http://{handle.container_name}:{port}"
        bridge = self.client().networks.get(GATEWAY_BRIDGE)
        entry = (bridge.attrs.get("Containers") or {}).get(task_container_id(task)) or {}
        address = str(entry.get("IPv4Address") or "").split("/")[0]
        return f"http://{address}:{port}" if address else ""  # "": not (or no longer) on this node's bridge

    # -- stop, status, logs -----------------------------------------------------------------
    def _remove_service(self, name_or_id: str) -> None:
        try:
            self.client().api.remove_service(name_or_id)
        except docker.errors.NotFound:
            pass

    def _wait_for_containers_gone(self, name: str) -> None:
        """Removing a service stops its container a moment later; wait for that (this node only)."""
        deadline = time.monotonic() + self.settings.stop_timeout + 10
        filters: dict[str, str | list[str] | bool] = {"label": f"com.docker.swarm.service.name={name}"}
        # sparse: the list alone, without inspecting each container (one gone meanwhile would raise NotFound)
        while self.client().containers.list(all=True, filters=filters, sparse=True) and time.monotonic() < deadline:
            time.sleep(0.2)

    async def stop(self, handle: ServerHandle) -> None:
        await self._call(self._remove_service, handle.container_id or handle.container_name)
        await self._call(self._wait_for_containers_gone, handle.container_name)

    async def list_servers(self) -> list[ServerInfo]:
        """Every service of this hub, with the state of its newest task."""

        def scan() -> list[ServerInfo]:
            api = self.client().api
            labels = ["hub.managed=true", f"hub.prefix={self.settings.prefix}"]
            services = [  # not the jobs that fetch images onto every node (hub/swarm_prepull.py)
                service
                for service in api.services(filters={"label": labels})
                if ((service.get("Spec") or {}).get("Labels") or {}).get(PREPULL_LABEL) != "true"
            ]
            if not services:
                return []
            tasks: dict[str, list[dict[str, Any]]] = {}
            for task in api.tasks(filters={"service": [service["ID"] for service in services]}):
                tasks.setdefault(task.get("ServiceID", ""), []).append(task)
            newest = {service["ID"]: latest_task(tasks.get(service["ID"], [])) for service in services}
            nodes = self._nodes_of([task for task in newest.values() if task_state(task) not in ENDED - {"orphaned"}])
            found = []
            for service in services:
                spec_labels = (service.get("Spec") or {}).get("Labels") or {}
                task = newest[service["ID"]]
                lost = lost_node(task, nodes)
                found.append(
                    ServerInfo(
                        username=spec_labels.get("hub.username", ""),
                        container_id=service["ID"],
                        container_name=(service.get("Spec") or {}).get("Name", ""),
                        running=task_state(task) in TASK_PROGRESS and not lost,  # on its way or running
                        lost=self._lost_text(lost) if lost else "",
                        exit_code=task_exit_code(task),
                        oom_killed=False,
                        gpu_ids=parse_gpu_label(spec_labels.get(GPU_LABEL)),
                        server_name=spec_labels.get("hub.server", ""),
                    )
                )
            return found

        return await self._call(scan)

    def _nodes_of(self, tasks: list[dict[str, Any] | None]) -> dict[str, dict[str, Any] | None]:
        """What the manager says of each node these tasks were placed on (None: no longer in the Swarm), one
        request per node; a node that cannot be asked right now is left out (hub/swarm_nodes.py)."""
        nodes: dict[str, dict[str, Any] | None] = {}
        for node_id in sorted({str((task or {}).get("NodeID") or "") for task in tasks} - {""}):
            try:
                nodes[node_id] = self.client().api.inspect_node(node_id)
            except docker.errors.NotFound:
                nodes[node_id] = None
            except docker.errors.APIError as exc:
                log.warning("could not ask the Swarm about node %s: %s", node_id[:12], exc)
        return nodes

    def _lost_text(self, node: str, files_on_node: bool | None = None) -> str:
        """Lost with its node: without a volume driver a running server's files stay on that node, where its
        volume is pinned (hub/swarm_placement.py)."""
        return lost_message(node, not self.settings.volume_driver if files_on_node is None else files_on_node)

    async def logs(self, handle: ServerHandle, lines: int = 50) -> str:
        def read() -> str:
            try:
                chunks = self.client().api.service_logs(
                    handle.container_id or handle.container_name, stdout=True, stderr=True, tail=str(lines)
                )
                return b"".join(chunks).decode("utf-8", "replace")
            except docker.errors.NotFound:
                return ""

        return await self._call(read)
