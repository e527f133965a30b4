"""Authenticators turn credentials into a user name; the hub's policy decides the rest.

To add a backend, subclass ``Authenticator``, implement ``check_password``, and register the
class under the entry-point group ``hub.authenticators``; ``auth.type`` in hub.yaml names it.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import ClassVar

from hub.config import AuthSection
from hub.db import Sessionmaker
from hub.errors import BadUsername
from hub.names import normalize_username, truncate, validate_username

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "hub.authenticators"


@dataclass(frozen=True, slots=True)
class Identity:
    username: str
    admin: bool | None = None
    """None lets the hub's configuration decide."""


class AuthUnavailable(Exception):
    """The backend cannot answer right now (not: the password is wrong)."""


class Authenticator(abc.ABC):
    """Checks a user name and password. Must not apply allow or admin lists: the hub does."""

    name: ClassVar[str]
    creates_accounts: ClassVar[bool] = True
    """Whether a successful login makes the hub account when it is missing (PAM, single sign-on: yes)."""

    def __init__(self, settings: AuthSection, sessions: Sessionmaker) -> None:
        self.settings = settings
        self.sessions = sessions

    @abc.abstractmethod
    async def check_password(self, username: str, password: str) -> Identity | None:
        """Return the identity for good credentials, None for bad ones; raise AuthUnavailable if down."""

    def startup_warnings(self) -> list[str]:
        return []


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    allowed_users: frozenset[str]
    admin_users: frozenset[str]

    @classmethod
    def from_settings(cls, settings: AuthSection) -> AccessPolicy:
        return cls(
            frozenset(normalize_username(name) for name in settings.allowed_users),
            frozenset(normalize_username(name) for name in settings.admin_users),
        )

    def admit(self, identity: Identity) -> Identity | None:
        name = validate_username(normalize_username(identity.username))
        if self.allowed_users and name not in self.allowed_users and name not in self.admin_users:
            log.warning("login refused for %s: not in allowed_users", truncate(name))
            return None
        admin = bool(identity.admin) or name in self.admin_users
        return replace(identity, username=name, admin=admin)


async def login(backend: Authenticator, policy: AccessPolicy, username: str, password: str) -> Identity | None:
    """The one place where a login attempt is checked: name rules, backend, allow and admin lists."""
    name = normalize_username(username)
    try:
        validate_username(name)
    except BadUsername:
        log.info("login refused: unusable user name %r", truncate(name))
        raise
    if not password:
        return None
    found = await backend.check_password(name, password)
    if found is None:
        return None
    return policy.admit(found)


def authenticator_class(name: str) -> type[Authenticator]:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            cls = entry.load()
            if not (isinstance(cls, type) and issubclass(cls, Authenticator)):
                raise TypeError(f"{entry.value} is not an Authenticator")
            return cls
    builtin = _builtin_authenticators()
    if name in builtin:
        return builtin[name]
    known = sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)} | set(builtin))
    raise LookupError(f"auth.type: no authenticator named {name!r} (known: {', '.join(known)})")


def _builtin_authenticators() -> dict[str, type[Authenticator]]:
    from hub.auth.dummy import DummyAuthenticator
    from hub.auth.native import NativeAuthenticator
    from hub.auth.pam import PamAuthenticator

    return {cls.name: cls for cls in (NativeAuthenticator, PamAuthenticator, DummyAuthenticator)}


def load_authenticator(settings: AuthSection, sessions: Sessionmaker) -> Authenticator:
    backend = authenticator_class(settings.type)(settings, sessions)
    for warning in backend.startup_warnings():
        log.warning("%s", warning)
    return backend
