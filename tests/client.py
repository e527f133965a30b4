"""A user of the hub over plain HTTP (through Traefik), for tests that need no browser."""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it gives something true, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def origin_of(url: str) -> str:
    """The origin (scheme, host and port) of an address, as a browser sends it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class HubUser:
    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.http = requests.Session()

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.get(self.base_url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    @property
    def origin_header(self) -> dict[str, str]:
        """What a browser on the hub's pages sends with a change or a WebSocket to a user's server.

        Forward-auth refuses a cookie-authenticated change without it (a page of another site could send it).
        """
        return {"Origin": origin_of(self.base_url)}

    def send(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: object
    ) -> requests.Response:
        """A change to a user's server as JupyterLab on the hub's pages sends it: with the hub's ``Origin``."""
        headers = {**self.origin_header, **(headers or {})}
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def xsrf(self, path: str = "/hub/home") -> str:
        match = XSRF.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, data: dict[str, str], *, xsrf_from: str = "/hub/home") -> requests.Response:
        form = {"_xsrf": self.xsrf(xsrf_from), **data}
        return self.http.post(self.base_url + path, data=form, timeout=30)

    def login(self, password: str) -> requests.Response:
        return self.post_form("/hub/login", {"username": self.name, "password": password}, xsrf_from="/hub/login")

    def start(self, image: str) -> dict[str, object]:
        """Start the server from the spawn form and follow the progress stream to its last event."""
        response = self.post_form("/hub/spawn", {"image": image}, xsrf_from="/hub/spawn")
        assert response.status_code == 200, response.text
        return self.last_progress_event()

    def last_progress_event(self) -> dict[str, object]:
        last: dict[str, object] = {}
        with self.get(f"/hub/api/users/{self.name}/server/progress", stream=True) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    last = json.loads(line[6:])
        return last

    def stop(self) -> requests.Response:
        return self.post_form("/hub/stop", {})

    def raw_get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        """Send the path exactly as written (no client-side normalisation of ../ or %2e)."""
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        connection.request("GET", path, headers={"Cookie": cookie, **(headers or {})})
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        connection.close()
        return response.status, body, dict(response.getheaders())
