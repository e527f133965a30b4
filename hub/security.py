"""Sessions, CSRF tokens and safe redirects."""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import FileField
from aiohttp_session import Session, get_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from multidict import MultiDictProxy

from hub.accounts import AccountService
from hub.config import Settings
from hub.errors import BadRequest, Forbidden
from hub.i18n import N_
from hub.session_reader import SessionReader

SESSION_COOKIE = "hub-session"
CSRF_FIELD = "_xsrf"
CSRF_HEADER = "X-XSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte cookie key, kept in a file (mode 0600) so that sessions survive restarts."""
    try:
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
        if len(key) == 32:
            return key
        raise ValueError(f"{path} does not hold a 32-byte key")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(base64.urlsafe_b64encode(key))
    os.replace(tmp, path)
    return key


def session_reader(settings: Settings) -> SessionReader:
    """Forward auth's cached read of the same cookie (hub/session_reader.py)."""
    return SessionReader(load_or_create_secret(settings.hub.secret_path), SESSION_COOKIE, settings.hub.session_max_age)


def session_storage(settings: Settings) -> EncryptedCookieStorage:
    return EncryptedCookieStorage(
        load_or_create_secret(settings.hub.secret_path),
        cookie_name=SESSION_COOKIE,
        max_age=settings.hub.session_max_age,
        httponly=True,
        samesite="Lax",
        secure=settings.hub.public_url.startswith("https://"),
        path="/",
    )


@dataclass(frozen=True, slots=True)
class SessionUser:
    name: str
    admin: bool


def session_user(session: Mapping[str, Any], accounts: AccountService) -> SessionUser | None:
    """The user of a session that still counts (same account, issued after its cut-off); admin rights are live.

    Cookies from before accounts had ids in them carry no ``uid``; the cut-off still applies to them.
    """
    name = session.get("user")
    issued = session.get("iat")
    uid = session.get("uid")
    if not isinstance(name, str) or not isinstance(issued, (int, float)):
        return None
    account = accounts.get(name)
    if account is None or issued <= account.sessions_valid_after:
        return None
    if uid is not None and uid != account.id:
        return None
    return SessionUser(name, account.admin)


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def start_session(session: Session, name: str, uid: int, issued: float | None = None) -> None:
    """A new session for the account; ``issued`` (default now) must be after the account's cut-off to count."""
    session.invalidate()
    session["user"] = name
    session["uid"] = uid
    session["iat"] = issued if issued is not None else time.time()
    session["csrf"] = secrets.token_urlsafe(24)


def is_token_request(request: web.Request) -> bool:
    """API calls authenticated by a token carry no ambient credential, so CSRF does not apply."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return request.path.startswith("/hub/api/") and scheme.lower() in ("token", "bearer") and bool(value.strip())


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The form of the request; an unknown charset or undecodable bytes are the sender's mistake (400)."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(
            N_("The form is too large (at most 1 MB): send a smaller file, or split it into parts."),
            f"form over the size limit on {request.method} {request.path}",
        ) from None
    except (LookupError, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(
            N_("The form could not be read: its encoding is not one this hub knows."),
            f"unreadable form on {request.method} {request.path}: {exc}",
        ) from None


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every unsafe request must carry the session's CSRF token (form field or header)."""
    if request.method in UNSAFE_METHODS and not is_token_request(request):
        session = await get_session(request)
        expected = session.get("csrf")
        sent = request.headers.get(CSRF_HEADER)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await read_form(request)  # parsed once here; handlers get aiohttp's cached copy
            if sent is None:
                value = form.get(CSRF_FIELD)
                sent = value if isinstance(value, str) else None
        if not (isinstance(expected, str) and sent and secrets.compare_digest(expected, sent)):
            raise Forbidden(
                N_("This form has expired or did not come from this hub. Reload the page and try again."),
                f"csrf check failed for {request.method} {request.path}",
            )
    return await handler(request)


def safe_next_url(value: str | None, default: str) -> str:
    """A redirect target on this hub only: an absolute path, never another host or scheme."""
    if not value or any(ord(char) < 32 or char == "\\" for char in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.startswith("//"):
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")
