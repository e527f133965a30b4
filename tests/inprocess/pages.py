"""Logging in through the hub's own login form, for in-process tests."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from hub.auth.native import set_password
from hub.keys import ACCOUNTS

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


async def log_in(client: TestClient, name: str, csrf_from: str = "/hub/home") -> str:
    """Give ``name`` a password and log in with it (the session cookie stays in the client); returns the CSRF
    token of the session, read from the form on ``csrf_from``."""
    await set_password(client.server.app[ACCOUNTS], name, f"{name} password 123")
    match = XSRF.search(await (await client.get("/hub/login")).text())
    assert match
    form = {"_xsrf": match.group(1), "username": name, "password": f"{name} password 123"}
    assert (await client.post("/hub/login", data=form, allow_redirects=False)).status in (302, 303)
    match = XSRF.search(await (await client.get(csrf_from)).text())
    assert match
    return match.group(1)
