"""Forward auth's read of the session cookie: decrypted once, then looked up.

Forward auth runs on every request to every user's server, and decrypting the session cookie
(Fernet: AES and HMAC, then JSON) is most of its cost. A cookie's content never changes (a new
session is a new cookie), so the decrypted content of recent cookies is kept for at most a minute,
and never past the cookie's own expiry. What the content means is still decided on every request
against the live accounts (``security.session_user``): logging out, a password change or a deletion
takes effect at once, as before. Only reads: the hub's pages keep using aiohttp-session.
"""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from hub.request_view import RequestView

KEEP_SECONDS = 60.0
MAX_ENTRIES = 4096


class SessionReader:
    def __init__(self, key: bytes, cookie_name: str, max_age: int) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.cookie_name = cookie_name
        self.max_age = max_age
        self._known: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def read(self, request: RequestView) -> dict[str, Any]:
        """The session's content ({} without a valid cookie)."""
        raw = request.cookies.get(self.cookie_name)
        if not raw:
            return {}
        now = time.time()
        known = self._known.get(raw)
        if known is not None and known[0] > now:
            return known[1]
        content, until = self._decrypt(raw, now)
        self._known[raw] = (until, content)
        self._known.move_to_end(raw)
        while len(self._known) > MAX_ENTRIES:
            self._known.popitem(last=False)
        return content

    def _decrypt(self, raw: str, now: float) -> tuple[dict[str, Any], float]:
        token = raw.encode()
        try:
            data = json.loads(self._fernet.decrypt(token, ttl=self.max_age))
            expires: float = self._fernet.extract_timestamp(token) + self.max_age
        except (InvalidToken, ValueError):
            return {}, now + KEEP_SECONDS  # garbage stays garbage
        created = data.get("created") if isinstance(data, dict) else None
        if isinstance(created, (int, float)):  # the session's own age, as aiohttp-session counts it on the pages
            expires = min(expires, created + self.max_age)
        if expires <= now:
            return {}, now + KEEP_SECONDS
        session = data.get("session") if isinstance(data, dict) else None
        return (session if isinstance(session, dict) else {}), min(expires, now + KEEP_SECONDS)
