"""The Docker Engine API calls of a start and a stop, made on the event loop with aiohttp.

The docker SDK goes through ``requests`` in a worker thread: a few milliseconds of Python per call, and a
thread hand-over each way. Here the same requests (same paths, queries and bodies, built by the SDK's own
helpers, so the socket proxy sees what it always saw) go straight from the loop over Docker's Unix socket or
plain TCP. Other transports (TLS, SSH) keep the SDK's session, in the spawner's threads. Errors come back as the
SDK's ``docker.errors`` exceptions, so callers handle both ways alike.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import docker.errors
from docker.transport import UnixHTTPAdapter
from docker.utils.utils import format_environment

T = TypeVar("T")
InThread = Callable[[Callable[[], T]], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class _Answer:
    """What ``docker.errors.APIError`` reads from a response (its status, address and reason)."""

    status_code: int
    url: str
    reason: str


def api_error(status: int, url: str, reason: str, body: bytes) -> docker.errors.APIError:
    """The SDK's exception for an error answer: NotFound for 404, APIError otherwise; Docker's message is its
    explanation."""
    try:
        explanation = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        explanation = body.decode("utf-8", "replace").strip()
    kind = docker.errors.NotFound if status == 404 else docker.errors.APIError
    answer: Any = _Answer(status, url, reason)  # the SDK's type is requests' Response; it reads only these three
    return kind(f"{status} {reason}", response=answer, explanation=explanation)


class DockerHTTP:
    """Container calls against the daemon (or socket proxy) the SDK client ``api`` talks to."""

    def __init__(self, api: Any, in_thread: InThread[Any]) -> None:
        self.api = api
        self._in_thread = in_thread
        self._version_prefix = f"/v{api._version}"
        self._timeout = float(api.timeout or 60)
        self._socket: str | None = None
        self._base: str | None = None
        adapter = getattr(api, "_custom_adapter", None)
        if isinstance(adapter, UnixHTTPAdapter):
            self._socket, self._base = adapter.socket_path, "http://docker"
        elif str(api.base_url).startswith("http://"):
            self._base = str(api.base_url).rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._config_headers: dict[str, str] = dict(api._general_configs.get("HttpHeaders") or {})
        """``HttpHeaders`` of Docker's config file, which the SDK adds to every request"""

    @property
    def on_loop(self) -> bool:
        """Whether calls go from the event loop (Unix socket, plain TCP) rather than the SDK's threads."""
        return self._base is not None

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Over TCP, HTTP(S)_PROXY and .netrc apply as they do for requests (aiohttp then reads them in a thread on
            # every call); a Unix socket has neither, as in the SDK, so its calls skip that work.
            if self._socket is None:
                self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(), trust_env=True)
            else:
                self._session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(self._socket), trust_env=False)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        extra_seconds: float = 0.0,
    ) -> Any:
        """Docker's JSON answer (None when it sends none); an error answer raises the SDK's exception."""
        if self._closed:  # a late clean-up call fails as "Docker away" rather than opening a new session
            raise docker.errors.DockerException("the hub is shutting down: no more Docker calls")
        data = json.dumps(body) if body is not None else None
        headers = {**({"Content-Type": "application/json"} if body is not None else {}), **self._config_headers}
        if self._base is None:
            return await self._in_thread(lambda: self._through_sdk(method, path, params, data, headers, extra_seconds))
        url = f"{self._base}{self._version_prefix}{path}"
        timeout = aiohttp.ClientTimeout(total=self._timeout + extra_seconds)
        try:
            async with self._http().request(
                method, url, params=params, data=data, headers=headers, timeout=timeout
            ) as response:
                content = await response.read()
                if response.status >= 400:
                    raise api_error(response.status, url, response.reason or "", content)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise docker.errors.DockerException(f"{method} {path}: {exc!r}") from exc
        try:
            return json.loads(content) if content.strip() else None
        except ValueError as exc:  # not Docker answering (a front end's page, say)
            raise docker.errors.DockerException(f"{method} {path}: not a JSON answer: {content[:200]!r}") from exc

    def _through_sdk(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        data: str | None,
        headers: dict[str, str],
        extra_seconds: float,
    ) -> Any:
        url = f"{self.api.base_url}{self._version_prefix}{path}"
        response = self.api.request(
            method, url, params=params, data=data, headers=headers, timeout=self._timeout + extra_seconds
        )
        self.api._raise_for_status(response)
        try:
            return response.json() if response.content.strip() else None
        except ValueError as exc:
            raise docker.errors.DockerException(f"{method} {path}: not a JSON answer") from exc

    # -- the calls -------------------------------------------------------------------------------
    async def create_container(self, arguments: dict[str, Any]) -> str:
        """Create a container from the SDK's ``create_container`` keyword arguments; its id."""
        options = dict(arguments)
        name, platform = options.pop("name", None), options.pop("platform", None)
        environment = options.pop("environment", None)
        if isinstance(environment, dict):
            environment = format_environment(environment)
        if options.pop("use_config_proxy", True):  # the proxy settings of Docker's config file, as the SDK adds
            environment = self.api._proxy_configs.inject_proxy_environment(environment) or None
        config = self.api.create_container_config(environment=environment, **options)
        params = {"name": name, **({"platform": platform} if platform else {})}
        made = await self.request(
            "POST", "/containers/create", params=params, body={k: v for k, v in config.items() if v is not None}
        )
        return str(made["Id"])

    async def start(self, container: str) -> None:
        await self.request("POST", f"/containers/{_part(container)}/start")

    async def inspect(self, container: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/containers/{_part(container)}/json"))

    async def stop(self, container: str, timeout: int) -> None:
        await self.request(
            "POST", f"/containers/{_part(container)}/stop", params={"t": str(timeout)}, extra_seconds=timeout
        )

    async def remove(self, container: str) -> None:
        """``docker rm -f``, with the query the SDK sends."""
        params = {"v": "False", "link": "False", "force": "True"}
        await self.request("DELETE", f"/containers/{_part(container)}", params=params)

    async def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/images/{_part(image)}/json"))

    async def inspect_volume(self, volume: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/volumes/{_part(volume)}"))

    async def create_volume(
        self, volume: str, labels: dict[str, str], driver_opts: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """``docker volume create`` with the local driver, with the body the SDK sends."""
        body = {"Name": volume, "Labels": labels, **({"DriverOpts": driver_opts} if driver_opts is not None else {})}
        return dict(await self.request("POST", "/volumes/create", body=body))


def _part(name: str) -> str:
    """A container name or id as one path segment (the SDK quotes the same way)."""
    return quote(name, safe="/:")
