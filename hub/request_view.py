"""What helpers that only read a request's headers and cookies ask of it.

An aiohttp request has both; so does a forward-auth question that came through the hub's lean listener
(hub/forward_auth_listener.py), which never builds an aiohttp request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class RequestView(Protocol):
    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive, as aiohttp's."""

    @property
    def cookies(self) -> Mapping[str, str]: ...
