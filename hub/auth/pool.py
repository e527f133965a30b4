"""Threads of their own for password hashing and PAM.

argon2 and PAM block for tens of milliseconds each. On the event loop's shared default pool a
flood of logins would queue in front of everything else that pool runs (route files, Docker
calls made with ``asyncio.to_thread``); here it queues only in front of other logins, and once
too many wait, further attempts are turned away at once instead of piling up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hub.errors import ServiceUnavailable

T = TypeVar("T")
WORKERS = 2
MAX_WAITING = 64


class AuthBusy(ServiceUnavailable):
    """Too many password checks are waiting already."""

    def __init__(self, detail: str) -> None:
        super().__init__("Many people are logging in right now. Please try again in a few seconds.", detail)


class AuthPool:
    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auth")
        self._max_waiting = max_waiting
        self._waiting = 0

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._waiting >= self._max_waiting:
            raise AuthBusy(f"{self._waiting} password checks waiting")
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: func(*args, **kwargs))
        finally:
            self._waiting -= 1


auth_pool = AuthPool()
"""The pool every authenticator and password change uses."""
