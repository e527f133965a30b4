"""Login methods turn what a person brings (a password, a provider's answer, a proxy's header) into an identity;
the hub's policy (``AccessPolicy``) decides who may enter and who is an admin.

Three kinds of method:
- ``PasswordAuthenticator``: the login form's user name and password (native, PAM, LDAP, dummy);
- ``RedirectAuthenticator``: the browser goes to a provider and comes back (OpenID Connect, GitHub, ...);
- ``HeaderAuthenticator``: a trusted front proxy names the user in a header.

To add a backend, subclass one of them and register the class under the entry-point group
``hub.authenticators``; an entry of ``auth.methods`` in hub.yaml names it by ``type``.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar, Literal

from hub.auth_config import MethodBase
from hub.config import AuthSection, Settings
from hub.db import Sessionmaker
from hub.errors import BadUsername
from hub.i18n import N_
from hub.names import normalize_username, truncate, validate_username

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "hub.authenticators"
LoginKind = Literal["password", "redirect", "header"]


@dataclass(frozen=True, slots=True)
class Identity:
    username: str
    admin: bool | None = None
    """None lets the hub's configuration decide."""
    groups: frozenset[str] | None = None
    """The groups the method reports; None when it reports none (then the hub's groups are left as they are)."""
    auth_state: Mapping[str, str] = field(default_factory=dict)
    """Values learned at login (access_token, id_token, ...); those named in auth_state_env reach the server."""
    subject: str | None = None
    """The provider's fixed id of the person (OIDC ``sub``, GitHub's numeric id); the account is bound to it at
    the first login and refuses another later (a user name that changed hands)."""


class AuthUnavailable(Exception):
    """The backend cannot answer right now (not: the credentials are wrong). The message is for the log."""

    def __init__(self, detail: str, user_message: str = "") -> None:
        super().__init__(detail)
        self.user_message = user_message or N_("Logging in is not possible right now. Please try again in a minute.")


class LoginRefused(Exception):
    """The login cannot go on, for a reason the person can act on (``user_message``); ``detail`` is for the log."""

    def __init__(self, user_message: str, detail: str = "", status: int = 403) -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message
        self.status = status


class Authenticator(abc.ABC):
    """One configured login method. Must not apply allow or admin lists: the hub does."""

    name: ClassVar[str]
    """The method type it implements (``type`` in auth.methods)."""
    login_kind: ClassVar[LoginKind] = "password"
    creates_accounts: ClassVar[bool] = True
    """Whether a successful login makes the hub account when it is missing (PAM, single sign-on: yes)."""

    def __init__(self, method: MethodBase, settings: Settings, sessions: Sessionmaker) -> None:
        self.method = method
        self.hub_settings = settings
        self.sessions = sessions

    @property
    def settings(self) -> MethodBase:
        """This method's configuration (plugins read ``self.settings.options``)."""
        return self.method

    def startup_warnings(self) -> list[str]:
        return []

    async def close(self) -> None:
        """Release connections and pools when the hub stops."""


class PasswordAuthenticator(Authenticator):
    login_kind: ClassVar[LoginKind] = "password"

    @abc.abstractmethod
    async def check_password(self, username: str, password: str) -> Identity | None:
        """Return the identity for good credentials, None for bad ones; raise AuthUnavailable if down."""


class RedirectAuthenticator(Authenticator):
    login_kind: ClassVar[LoginKind] = "redirect"

    @abc.abstractmethod
    async def begin(self, callback_url: str) -> tuple[str, dict[str, str]]:
        """Where to send the browser, and what to keep (in the encrypted session) until it comes back.

        What is kept must include ``state``; the hub compares it with the callback's in constant time before
        ``complete`` runs."""

    @abc.abstractmethod
    async def complete(self, params: Mapping[str, str], kept: Mapping[str, str], callback_url: str) -> Identity:
        """Turn the provider's answer (the callback's query) into an identity.

        Raise LoginRefused for a refusal the person can act on, AuthUnavailable when the provider is down."""


class HeaderAuthenticator(Authenticator):
    login_kind: ClassVar[LoginKind] = "header"

    @abc.abstractmethod
    async def identify(self, request: web.Request, client_address: str) -> Identity | None:
        """The identity a trusted front proxy asserts for this request, None when there is none.

        ``client_address`` is the address the request came from (through the hub's trusted proxies);
        raise LoginRefused when it is not the front proxy's."""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may log in and who is an admin: each method's own lists and groups, plus the hub-wide lists.

    The hub-wide ``auth.allowed_users`` and ``auth.admin_users`` apply to the first method only (the one an
    old single-method configuration describes): a name listed there is that method's person, and the same
    name from another method (a GitHub login ``admin``) must not become an admin or slip past its groups."""

    allowed_users: frozenset[str]
    admin_users: frozenset[str]
    primary: str = ""

    @classmethod
    def from_settings(cls, settings: AuthSection) -> AccessPolicy:
        return cls(
            frozenset(normalize_username(name) for name in settings.allowed_users),
            frozenset(normalize_username(name) for name in settings.admin_users),
            settings.primary.name,
        )

    def admit(self, identity: Identity, method: MethodBase) -> Identity:
        """The identity with its checked name and admin flag; LoginRefused when the lists keep it out."""
        name = validate_username(normalize_username(identity.username))
        groups = identity.groups or frozenset()
        hub_wide = method.name == self.primary
        allowed = (self.allowed_users if hub_wide else frozenset()) | {
            normalize_username(user) for user in method.allowed_users
        }
        admins = (self.admin_users if hub_wide else frozenset()) | {
            normalize_username(user) for user in method.admin_users
        }
        admin = bool(identity.admin) or name in admins or bool(groups & set(method.admin_groups))
        restricted = bool(allowed or method.allowed_groups) or not method.admits_all()
        if restricted and not admin and name not in allowed and not groups & set(method.allowed_groups):
            log.warning("login refused for %s (%s): not in the allowed users or groups", truncate(name), method.name)
            message = (
                N_("Your account is not in a group that may use this hub. Ask the hub's administrator for access.")
                if method.allowed_groups
                else N_("Your account may not use this hub. Ask the hub's administrator for access.")
            )
            raise LoginRefused(message)
        return replace(identity, username=name, admin=admin)


async def check_password_login(backend: PasswordAuthenticator, username: str, password: str) -> Identity | None:
    """A password login's first half: name rules and the backend (the hub's policy follows in the login flow)."""
    name = normalize_username(username)
    try:
        validate_username(name)
    except BadUsername:
        log.info("login refused: unusable user name %r", truncate(name))
        raise
    if not password:
        return None
    return await backend.check_password(name, password)


BUILTIN_MODULES = {
    "native": "hub.auth.native",
    "pam": "hub.auth.pam",
    "dummy": "hub.auth.dummy",
    "header": "hub.auth.header",
    "oidc": "hub.auth.oidc",
    "generic": "hub.auth.oidc",
    "google": "hub.auth.oidc",
    "entra": "hub.auth.oidc",
    "azuread": "hub.auth.oidc",
    "github": "hub.auth.github",
    "ldap": "hub.auth.ldap",
}
"""Built-in method types and their modules; each module maps its types to classes in ``AUTHENTICATORS``."""


def authenticator_class(kind: str) -> type[Authenticator]:
    if kind in BUILTIN_MODULES:
        classes: dict[str, type[Authenticator]] = importlib.import_module(BUILTIN_MODULES[kind]).AUTHENTICATORS
        return classes[kind]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == kind:
            cls = entry.load()
            if not (isinstance(cls, type) and issubclass(cls, Authenticator)):
                raise TypeError(f"{entry.value} is not an Authenticator")
            return cls
    known = sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)} | set(BUILTIN_MODULES))
    raise LookupError(f"auth.methods: no login method of type {kind!r} (known: {', '.join(known)})")


class LoginMethods:
    """The hub's configured login methods, in the order of auth.methods (the first is the default)."""

    def __init__(self, settings: Settings, sessions: Sessionmaker) -> None:
        self.by_name: dict[str, Authenticator] = {}
        for method in settings.auth.methods:
            backend = authenticator_class(method.type)(method, settings, sessions)
            for warning in backend.startup_warnings():
                log.warning("%s", warning)
            self.by_name[method.name] = backend

    @property
    def primary(self) -> Authenticator:
        return next(iter(self.by_name.values()))

    def get(self, name: str) -> Authenticator | None:
        return self.by_name.get(name)

    def of_kind(self, kind: LoginKind) -> list[Authenticator]:
        return [backend for backend in self.by_name.values() if backend.login_kind == kind]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.by_name.values())

    async def close(self) -> None:
        for backend in self.by_name.values():
            await backend.close()
