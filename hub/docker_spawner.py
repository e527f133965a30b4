"""Starts each user's server as a Docker container (the calls of a start and a stop from the event loop through
hub/docker_http.py; the rest through the docker SDK, always off the event loop)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import docker
import docker.errors
import docker.models.containers
import docker.types
from docker.models.containers import Container

from hub import names
from hub.config import ImageSpec, SpawnerSection
from hub.docker_events import ContainerDeaths
from hub.docker_http import DockerHTTP
from hub.errors import ServiceUnavailable, SpawnError
from hub.gpus import GPU_LABEL, gpu_label, parse_gpu_label
from hub.i18n import L_, N_
from hub.images import ImageProvider
from hub.networks import UserNetworks
from hub.polling import SharedPace
from hub.port_probe import host_and_port, port_accepts
from hub.registry import registry_auth
from hub.spawner import AddressKnown, Report, ServerHandle, ServerInfo, Spawner, SpawnRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

READY_POLL_SECONDS = 0.05
"""The pause between looks at a server that boots alone; with N booting at once each is looked at N times less
often (hub/polling.py), up to SLOW_READY_POLL_SECONDS."""
QUICK_POLL_SECONDS = 4.0
"""A server that has not answered after this long (many starting at once) is asked less often: the readiness
pause grows to SLOW_READY_POLL_SECONDS and Docker's view of it is read every SLOW_STATE_CHECK_SECONDS instead of
every half second (with 30 servers starting, those reads were most of the hub's CPU). Until its port takes
connections, a look is a bare TCP connect (hub/port_probe.py), not an HTTP request."""
SLOW_READY_POLL_SECONDS = 0.5
READY_POLL_SHARE = 0.01
"""After QUICK_POLL_SECONDS the pause between looks is this share of the time waited so far (at most
SLOW_READY_POLL_SECONDS): a server that took 40 s is looked at every 0.4 s, which adds about 0.5 % to its wait
on average, while thirty servers booting on a busy machine are probed a fifth as often as at a fixed 0.1 s."""
SLOW_STATE_CHECK_SECONDS = 2.0
EVENTS_STATE_CHECK_SECONDS = 10.0
"""While Docker's event stream is read (hub/docker_events.py), a container's exit arrives as an event; Docker is
then asked directly only this often, in case an event was lost."""
KILLED_EXIT_CODE = 137  # SIGKILL: what the kernel's out-of-memory killer sends
LOG_TAIL_LINES = 20
DOCKER_DOWN = N_("Docker is not reachable right now, so servers cannot start or stop. Please try again in a minute.")
NO_QUOTA = (
    "Your server cannot start: this hub is set to limit the size of {what} ({setting}: {size}), but Docker on "
    "this host cannot enforce that limit. Please tell an admin."
)
QUOTA_HINT = {
    "spawner.volume_size": "Docker's volumes must be on an xfs file system mounted with the pquota option",
    "spawner.writable_layer_size": "Docker must use the overlay2 storage driver on xfs mounted with pquota",
}


def jupyter_command(image: ImageSpec, base_url: str) -> list[str]:
    """The command line of a Jupyter server behind the hub (token comes from JUPYTER_TOKEN)."""
    return [
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        f"--port={image.port}",
        "--no-browser",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.default_url={image.default_url}",
        "--ServerApp.allow_remote_access=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]


def container_command(image: ImageSpec, base_url: str) -> list[str] | None:
    if image.command is not None:
        return [part.replace("{base_url}", base_url).replace("{port}", str(image.port)) for part in image.command]
    return jupyter_command(image, base_url) if image.jupyter else None


def container_environment(request: SpawnRequest) -> dict[str, str]:
    env = {
        **request.login_environment,  # first: it may never replace what the hub itself sets
        "HUB_USER": request.username,
        "HUB_BASE_URL": request.base_url,
        "HUB_SERVER_TOKEN": request.token,
        "JUPYTERHUB_SERVICE_PREFIX": request.base_url,
        **request.image.environment,
    }
    if request.image.jupyter:
        env["JUPYTER_TOKEN"] = request.token
    return env


def memory_limit(request: SpawnRequest) -> str | None:
    """The server's memory limit: the one chosen for this start, else the image's."""
    return request.limits.mem_limit if request.limits is not None else request.image.mem_limit


def cpu_limit(request: SpawnRequest) -> float | None:
    return request.limits.cpu_limit if request.limits is not None else request.image.cpu_limit


def gpu_requests(gpu_ids: tuple[str, ...]) -> list[docker.types.DeviceRequest]:
    """What ``docker run --gpus '"device=0,1"'`` sends: exactly these GPUs, through the nvidia driver."""
    if not gpu_ids:
        return []
    return [docker.types.DeviceRequest(driver="nvidia", device_ids=list(gpu_ids), capabilities=[["gpu"]])]


def is_gpu_refusal(exc: docker.errors.APIError) -> bool:
    """Docker's words when it has no NVIDIA driver to pass a GPU with."""
    return "device driver" in str(exc.explanation or exc)


def readiness_url(handle_url: str, request: SpawnRequest) -> str:
    path = "/" if request.image.strip_prefix else request.base_url
    return f"{handle_url}{path}api" if request.image.jupyter else f"{handle_url}{path}"


def log_config(settings: SpawnerSection) -> dict[str, Any] | None:
    """Rotation of a container's log (json-file or local), or None for the daemon's own log settings."""
    if settings.log_driver == "default":
        return None
    return {
        "type": settings.log_driver,
        "config": {"max-size": settings.log_max_size, "max-file": str(settings.log_max_files)},
    }


def is_quota_refusal(exc: docker.errors.APIError) -> bool:
    """Docker's words for "this storage cannot limit sizes" (volumes: local driver; containers: overlay2)."""
    text = str(exc.explanation or exc)
    return "quota" in text or "storage-opt" in text


def quota_error(setting: str, size: str, exc: docker.errors.APIError) -> SpawnError:
    what = "each user's files" if setting == "spawner.volume_size" else "each container's own files"
    return SpawnError(
        NO_QUOTA.format(what=what, setting=setting, size=size),
        f"{setting} is {size}, but Docker refused it: {exc.explanation or exc}. {QUOTA_HINT[setting]}; "
        f"elsewhere remove {setting} from the configuration (see the README, 'Where data lives')",
    )


class DockerSpawner(Spawner):
    def __init__(self, settings: SpawnerSection, extra_labels: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.extra_labels = {**settings.extra_labels, **(extra_labels or {})}
        self._client: docker.DockerClient | None = None
        self._registry_auth = registry_auth(settings)  # a registry without credentials: ConfigError at start
        self._client_lock = threading.Lock()
        self._network_lock = asyncio.Lock()
        self._network_ready = False
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="docker")
        self.images = ImageProvider(
            settings, self.client, self._call, inspect=lambda image: self._on_engine(lambda e: e.inspect_image(image))
        )
        self.networks = UserNetworks(settings, self.client, self._call)
        self._storage_problems: list[str] | None = None
        self.deaths = ContainerDeaths(self.client, settings.prefix)
        self._engine: DockerHTTP | None = None
        self._stopping: set[asyncio.Future[None]] = set()
        self._probes = SharedPace(READY_POLL_SECONDS, SLOW_READY_POLL_SECONDS)  # servers waited for, and how often

    # -- plumbing ---------------------------------------------------------------------------
    def client(self) -> docker.DockerClient:
        with self._client_lock:
            return self._connect()

    def _connect(self) -> docker.DockerClient:
        if self._client is None:
            if self.settings.docker_url:
                self._client = docker.DockerClient(base_url=self.settings.docker_url, max_pool_size=32)
            else:
                self._client = docker.from_env(max_pool_size=32)
            if self._registry_auth is not None:  # where the SDK keeps `docker login`'s: sent with pulls, services
                api: Any = self._client.api  # a private attribute: the SDK has no public way to set it
                api._auth_configs = self._registry_auth
        return self._client

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking docker SDK call in the spawner's threads; Docker being away -> ServiceUnavailable."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: func(*args, **kwargs))
        except docker.errors.APIError:
            raise
        except docker.errors.DockerException as exc:
            raise ServiceUnavailable(DOCKER_DOWN, f"docker: {exc}") from exc
        except OSError as exc:  # requests' ConnectionError is an OSError
            raise ServiceUnavailable(DOCKER_DOWN, f"docker: {exc}") from exc

    async def _on_engine(self, work: Callable[[DockerHTTP], Awaitable[T]]) -> T:
        """A call of a start or a stop from the event loop (hub/docker_http.py); Docker away -> ServiceUnavailable."""
        if self._engine is None:
            client = await self._call(self.client)  # the SDK client's first use asks Docker for its API version
            self._engine = self._engine or DockerHTTP(client.api, self._call)
        try:
            return await work(self._engine)
        except docker.errors.APIError:
            raise
        except (docker.errors.DockerException, OSError) as exc:
            raise ServiceUnavailable(DOCKER_DOWN, f"docker: {exc}") from exc

    async def _reload(self, container: Container) -> None:
        """Read the container's state again (the SDK's ``reload``, from the loop)."""
        container.attrs = await self._on_engine(lambda engine: engine.inspect(str(container.id)))

    async def ping(self) -> bool:
        try:
            return bool(await self._call(lambda: self.client().ping()))
        except (ServiceUnavailable, docker.errors.APIError):
            return False

    async def storage_problems(self) -> list[str]:
        """Size limits in the configuration that Docker here cannot enforce, in words for the admin.

        Checked once (a probe volume for ``volume_size``; the storage driver and its file system for
        ``writable_layer_size``) and logged as errors; /hub/health shows them as warnings.
        """
        if self._storage_problems is None:
            self._storage_problems = await self._call(self._check_storage)
            for problem in self._storage_problems:
                log.error("%s", problem)
        return self._storage_problems

    def _check_storage(self) -> list[str]:
        client, problems = self.client(), []
        size = self.settings.volume_size
        if size:
            probe = f"{self.settings.prefix}-size-probe-{secrets.token_hex(4)}"
            labels = {"hub.managed": "true", "hub.prefix": self.settings.prefix, **self.extra_labels}
            try:
                client.volumes.create(probe, labels=labels, driver_opts={"size": size}).remove()
            except docker.errors.APIError as exc:
                if not is_quota_refusal(exc):
                    raise
                problems.append(
                    f"spawner.volume_size is {size}, but Docker here cannot limit volume sizes "
                    f"({exc.explanation}): {QUOTA_HINT['spawner.volume_size']}. No server can start "
                    "until the setting is removed or Docker's storage changed."
                )
        layer = self.settings.writable_layer_size
        if layer:
            info = client.info()
            backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem")
            if info.get("Driver") != "overlay2" or backing != "xfs":
                problems.append(
                    f"spawner.writable_layer_size is {layer}, but Docker here uses {info.get('Driver')} "
                    f"on {backing or 'an unknown file system'}: "
                    f"{QUOTA_HINT['spawner.writable_layer_size']}. No server can start until the "
                    "setting is removed or Docker's storage changed."
                )
        return problems

    async def daemon_info(self) -> dict[str, Any]:
        """``docker info`` (runtimes, discovered devices): what hub/gpus.py checks at start-up."""
        return await self._call(lambda: self.client().info())

    async def close(self) -> None:
        self.deaths.close()
        await self.images.close()
        if self._stopping:  # stops whose callers gave up (a shutdown past its time): a little longer for them
            await asyncio.wait(self._stopping, timeout=self.settings.stop_timeout + 5)
        if self._engine is not None:
            await self._engine.close()
        if self._client is not None:
            self._client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- start ------------------------------------------------------------------------------
    async def start(
        self, request: SpawnRequest, report: Report, address_known: AddressKnown | None = None
    ) -> ServerHandle:
        image = request.image
        await self.images.ensure(image, report)
        report(30, N_("Preparing the network and your storage"))
        labels, volume, volume_labels = self.labels_and_volume(request)
        name = names.container_name(self.settings.prefix, request.slug)
        try:
            async with self._network_for(request.slug, name, labels) as network:
                await self._ensure_volume(volume, volume_labels)
                report(40, N_("Creating your container"))
                container = await self._create(request, name, volume, labels, network)
        except BaseException:
            self._network_ready = False  # the next start looks the shared network up again: it may be what failed
            await asyncio.shield(self._tidy_network(name))  # a per-user network made for nothing
            raise
        try:
            report(50, N_("Starting your container"))
            try:
                container = await self._start_container(container, request, labels, volume)
            except docker.errors.APIError as exc:
                if request.gpu_ids and is_gpu_refusal(exc):
                    raise SpawnError(
                        N_(
                            "Your server needs a GPU, but Docker on this host cannot give GPUs to containers "
                            "(it has no NVIDIA runtime). Please tell an admin."
                        ),
                        f"start {name} with GPUs {gpu_label(request.gpu_ids)}: {exc.explanation}; install the "
                        "NVIDIA Container Toolkit (nvidia-ctk runtime configure --runtime=docker)",
                    ) from exc
                raise SpawnError(
                    L_("Docker could not start your container: %(reason)s", reason=exc.explanation), str(exc)
                ) from exc
            handle = ServerHandle(container.id or "", name, volume, self._address(container, image, network))
            if address_known is not None:
                address_known(handle)  # the hub writes the route while the server boots
            report(60, N_("Waiting for your server to answer"))
            await self._wait_until_answering(container, handle, request)
            return handle
        except BaseException:
            self._network_ready = False
            # Cancelled or failed after the container exists: never leave it running unknown to the hub.
            await asyncio.shield(self._remove_container_and_network(name))
            raise

    async def _start_container(
        self, container: Container, request: SpawnRequest, labels: dict[str, str], volume: str
    ) -> Container:
        """Start the container and read its state. The shared network is looked up once per hub; when something
        removed it since (``docker network prune``), it is made again and the container with it."""
        try:
            await self._on_engine(lambda engine: engine.start(str(container.id)))
        except docker.errors.APIError as exc:
            if not self._network_gone(exc):
                raise
            log.warning("network %s is gone: making it again", self.settings.network)
            self._network_ready = False
            name = str(container.name)
            await self._remove_container(name)
            async with self._network_for(request.slug, name, labels) as network:
                container = await self._create(request, name, volume, labels, network)
            await self._on_engine(lambda engine: engine.start(str(container.id)))
        await self._reload(container)
        return container

    def labels_and_volume(self, request: SpawnRequest) -> tuple[dict[str, str], str, dict[str, str]]:
        """The server's labels, its volume's name and the volume's labels (those of the server whose volume it is:
        a named server may mount the account's volume)."""
        prefix, user = self.settings.prefix, request.username
        labels = names.labels(prefix, user, request.slug, self.extra_labels, server=request.server_name)
        volume = request.volume_name or names.volume_name(prefix, request.slug)
        volume_slug = names.server_slug(user, request.volume_server)
        volume_labels = names.labels(prefix, user, volume_slug, self.extra_labels, server=request.volume_server)
        return labels, volume, volume_labels

    async def _remove_container_and_network(self, name: str) -> None:
        await self._remove_container(name)
        await self._tidy_network(name)

    async def _tidy_network(self, container_name: str) -> None:
        """Clean-up after a failed start: a network left behind now is removed by the next sweep."""
        try:
            await self.networks.remove_for(container_name)
        except Exception as exc:
            log.warning("network of %s not removed yet: %s", container_name, getattr(exc, "detail", exc))

    @asynccontextmanager
    async def _network_for(self, slug: str, container_name: str, labels: dict[str, str]) -> AsyncIterator[str]:
        """The network the container joins; per user, its lock is held until the container exists."""
        if self.settings.isolation == "per_user":
            network = names.user_network_name(self.settings.prefix, slug)
            async with self.networks.holding(network):
                yield await self.networks.ensure(slug, container_name, labels)
            return
        if not self._network_ready:
            async with self._network_lock:  # Docker allows two networks of one name: create it once
                if not self._network_ready:
                    await self._call(self._ensure_network, labels)
                    self._network_ready = True  # looked up once, not at every start (see _start_container)
        yield self.settings.network

    def _ensure_network(self, labels: dict[str, str]) -> None:
        client = self.client()
        try:
            client.networks.get(self.settings.network)
        except docker.errors.NotFound:
            net_labels = {
                key: value for key, value in labels.items() if key not in ("hub.user", "hub.username", "hub.server")
            }
            try:
                client.networks.create(self.settings.network, driver="bridge", labels=net_labels, check_duplicate=True)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # created meanwhile by a concurrent spawn
                    raise
            log.info("created network %s", self.settings.network)

    async def _ensure_volume(self, volume: str, labels: dict[str, str]) -> None:
        size = self.settings.volume_size
        try:
            found = await self._on_engine(lambda engine: engine.inspect_volume(volume))
        except docker.errors.NotFound:
            pass
        else:
            if size and "size" not in (found.get("Options") or {}):
                log.warning("volume %s was made before spawner.volume_size was set: it has no size limit", volume)
            return
        options = {"size": size} if size else None
        try:
            await self._on_engine(lambda engine: engine.create_volume(volume, labels, options))
        except docker.errors.APIError as exc:
            if size and is_quota_refusal(exc):
                raise quota_error("spawner.volume_size", size, exc) from exc
            raise

    async def _remove_container(self, name: str) -> None:
        try:  # one request (by name or id), not an inspect first
            await self._on_engine(lambda engine: engine.remove(name))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):
                raise

    async def _create_container(self, image: str, options: dict[str, Any], labels: dict[str, str]) -> Container:
        """The SDK's create in one request: its inspect afterwards is left out (the start's reload reads the
        container anyway). A leftover container of the same name (a hub stopped mid-start) is removed and the
        create tried again; so is the shared network made again when the create is refused for its absence
        (the socket proxy checks networks at create; Docker itself only at start, see _start_container)."""
        client = await self._call(self.client)
        sdk: Any = docker.models.containers  # its private helper: the same translation of options as its create
        arguments = sdk._create_container_args({**options, "image": image, "version": client.api.api_version})
        for attempt in (1, 2):
            try:
                made = await self._on_engine(lambda engine: engine.create_container(arguments))
                break
            except docker.errors.APIError as exc:
                if attempt == 2:
                    raise
                if exc.status_code == 409:  # "the container name ... is already in use"
                    await self._remove_container(options["name"])
                elif exc.status_code == 404 and self._network_gone(exc):
                    log.warning("network %s is gone: making it again", self.settings.network)
                    await self._call(self._ensure_network, labels)
                else:
                    raise
        return client.containers.prepare_model({"Id": made, "Name": f"/{options['name']}"})

    def _network_gone(self, refusal: docker.errors.APIError) -> bool:
        network = self.settings.network
        return self.settings.isolation != "per_user" and f"network {network} not found" in str(refusal.explanation)

    async def _create(
        self, request: SpawnRequest, name: str, volume: str, labels: dict[str, str], network: str
    ) -> Container:
        image = request.image
        options: dict[str, Any] = {
            "name": name,
            "command": container_command(image, request.base_url),
            "environment": container_environment(request),
            "labels": {
                **labels,
                "hub.image": image.name,
                **({GPU_LABEL: gpu_label(request.gpu_ids)} if request.gpu_ids else {}),
            },
            "network": network,
            "volumes": {volume: {"bind": image.volume_mount, "mode": "rw"}},
            "init": True,
            "detach": True,
            "security_opt": ["no-new-privileges"],
            "cap_drop": ["ALL"],
            "pids_limit": self.settings.pids_limit,
            "user": image.user,
        }
        memory, cpus = memory_limit(request), cpu_limit(request)
        if memory:
            options["mem_limit"] = memory
        if cpus:
            options["nano_cpus"] = int(cpus * 1_000_000_000)
        if request.gpu_ids:
            options["device_requests"] = gpu_requests(request.gpu_ids)
        logging_options = log_config(self.settings)
        if logging_options:
            options["log_config"] = logging_options
        if self.settings.writable_layer_size:
            options["storage_opt"] = {"size": self.settings.writable_layer_size}
        try:
            return await self._create_container(image.image, options, labels)
        except docker.errors.APIError as exc:
            if self.settings.writable_layer_size and is_quota_refusal(exc):
                raise quota_error("spawner.writable_layer_size", self.settings.writable_layer_size, exc) from exc
            raise SpawnError(
                L_(
                    "Docker refused to create a container from the image %(image)s: %(reason)s",
                    image=image.image,
                    reason=exc.explanation,
                ),
                f"create {name}: {exc}",
            ) from exc

    def _address(self, container: Container, image: ImageSpec, network: str) -> str:
        if self.settings.address == "name":
            host = container.name
        else:
            host = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        return f"http://{host}:{image.port}"

    async def _wait_until_answering(self, container: Container, handle: ServerHandle, request: SpawnRequest) -> None:
        """Return once the server answers HTTP; a container that exits first, or a start past its time, fails."""
        died = self.deaths.watch(handle.container_id)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
                with self._probes.waiting():
                    await self._poll_until_answering(container, handle, request, http, died)
        finally:
            self.deaths.forget(handle.container_id)

    async def _poll_until_answering(
        self,
        container: Container,
        handle: ServerHandle,
        request: SpawnRequest,
        http: aiohttp.ClientSession,
        died: asyncio.Event,
    ) -> None:
        url = readiness_url(handle.url, request)
        headers = {"Authorization": f"token {request.token}"}
        host, port = host_and_port(handle.url)
        began = time.monotonic()
        deadline = began + self.settings.start_timeout
        next_state_check = 0.0
        while True:
            if await port_accepts(host, port, timeout=1.0):
                try:
                    async with http.get(url, headers=headers, allow_redirects=False) as response:
                        if response.status < 500:
                            return
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
            now = time.monotonic()
            slow = now - began > QUICK_POLL_SECONDS  # a slow start (a busy machine): look less often
            if died.is_set() or now >= next_state_check:
                died.clear()
                if self.deaths.live:
                    next_state_check = now + EVENTS_STATE_CHECK_SECONDS
                else:
                    next_state_check = now + (SLOW_STATE_CHECK_SECONDS if slow else 0.5)
                await self._reload(container)
                if container.status in ("exited", "dead"):
                    raise await self._exit_error(container, handle, memory_limit(request))
            if now > deadline:
                tail = await self.logs(handle, LOG_TAIL_LINES)
                await self.stop(handle)
                raise SpawnError(
                    L_(
                        "Your server did not answer within %(seconds)g seconds, so it was stopped.",
                        seconds=self.settings.start_timeout,
                    ),
                    f"{handle.container_name} not answering at {url}",
                    log_tail=tail,
                )
            await asyncio.sleep(self._probes.pause((now - began) * READY_POLL_SHARE if slow else 0.0))

    async def _exit_error(self, container: Container, handle: ServerHandle, mem_limit: str | None = None) -> SpawnError:
        state = container.attrs.get("State", {})
        code = state.get("ExitCode")
        if code == KILLED_EXIT_CODE and not state.get("OOMKilled"):
            # Docker may report the exit before the kernel's out-of-memory event: look once more.
            await asyncio.sleep(0.3)
            await self._reload(container)
            state = container.attrs.get("State", {})
        tail = await self.logs(handle, LOG_TAIL_LINES)
        await self.stop(handle)
        if state.get("OOMKilled"):
            message = N_("Your server ran out of memory while starting and was stopped.")
        elif code == KILLED_EXIT_CODE and mem_limit:
            message = L_(
                "Your server was killed while starting (exit code %(code)s), most likely because it ran out "
                "of memory (its limit is %(limit)s).",
                code=code,
                limit=mem_limit,
            )
        else:
            message = L_("Your server stopped while starting (exit code %(code)s).", code=code)
        return SpawnError(message, f"{handle.container_name} exited with {code}", log_tail=tail)

    # -- stop, status, logs -----------------------------------------------------------------
    async def stop(self, handle: ServerHandle) -> None:
        stopping = asyncio.ensure_future(self._stop_and_remove(handle))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stop_ended)
        await asyncio.shield(stopping)  # a cancelled caller never leaves it stopped, not removed
        await self.networks.remove_for(handle.container_name)

    def _stop_ended(self, stopping: asyncio.Future[None]) -> None:
        self._stopping.discard(stopping)
        if not stopping.cancelled() and stopping.exception() is not None:  # also when its caller gave up
            log.info("a stop ended with an error: %s", stopping.exception())

    async def _stop_and_remove(self, handle: ServerHandle) -> None:
        target, seconds = handle.container_id or handle.container_name, self.settings.stop_timeout
        gone = False
        try:  # straight by id (or name): no inspect first
            await self._on_engine(lambda engine: engine.stop(target, seconds))
        except docker.errors.NotFound:
            gone = True  # nothing to remove but its network
        except docker.errors.APIError as exc:
            if exc.status_code not in (304, 409):
                raise
        if not gone:  # by id when known: a newer container of the same name is not this one
            await self._remove_container(target)

    async def list_servers(self) -> list[ServerInfo]:
        """Every container of this hub. Also removes per-user networks whose container is gone (and joins
        ``connect_containers`` to the others again): reconcile calls this every round."""

        def scan() -> list[ServerInfo]:
            # One list request for all; only a container that is not running is inspected (its exit code and OOM
            # flag are not in the list). The SDK's non-sparse list would inspect every container, every round.
            api = self.client().api
            labels = ["hub.managed=true", f"hub.prefix={self.settings.prefix}"]
            found = []
            for summary in api.containers(all=True, filters={"label": labels}):
                running = summary.get("State") == "running"
                state: dict[str, Any] = {}
                if not running:
                    try:
                        state = api.inspect_container(summary["Id"]).get("State") or {}
                    except docker.errors.NotFound:
                        continue  # removed since the list was made
                container_labels = summary.get("Labels") or {}
                names = summary.get("Names") or [""]
                found.append(
                    ServerInfo(
                        username=container_labels.get("hub.username", ""),
                        container_id=str(summary.get("Id") or ""),
                        container_name=str(names[0]).lstrip("/"),
                        running=running,
                        exit_code=state.get("ExitCode"),
                        oom_killed=bool(state.get("OOMKilled")),
                        gpu_ids=parse_gpu_label(container_labels.get(GPU_LABEL)),
                        server_name=container_labels.get("hub.server", ""),
                    )
                )
            return found

        found = await self._call(scan)
        try:
            await self.networks.sweep({info.container_name for info in found})
        except (docker.errors.APIError, ServiceUnavailable, SpawnError) as exc:
            log.warning("could not tidy the per-user networks: %s", getattr(exc, "detail", exc))
        return found

    async def remove_data(self, volume: str) -> None:

        def remove() -> None:
            try:
                self.client().volumes.get(volume).remove()
            except docker.errors.NotFound:
                pass

        try:
            await self._call(remove)
        except docker.errors.APIError as exc:
            raise SpawnError(
                L_("The files could not be deleted: %(reason)s", reason=exc.explanation), str(exc)
            ) from exc

    async def logs(self, handle: ServerHandle, lines: int = 50) -> str:
        def read() -> str:
            try:
                container = self.client().containers.get(handle.container_id or handle.container_name)
            except docker.errors.NotFound:
                return ""
            return container.logs(tail=lines).decode("utf-8", "replace")

        return await self._call(read)
