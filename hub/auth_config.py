"""Configuration of login methods: `auth.methods` in hub.yaml, one entry per way to log in.

Each entry has a `type` (native, pam, dummy, header, oidc, github, google, entra, ldap, or a plugin's
name) and a `name` that is unique in the hub. Every account belongs to exactly one method, so a
name from one method can never log in as the same name from another.

The keys follow JupyterHub's authenticators where a name fits (allowed_users, admin_users,
allowed_groups, admin_groups, manage_groups, client_id, ...), so a configuration moves over easily.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

METHOD_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class MethodBase(BaseModel):
    """What every login method has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str = Field("", pattern=rf"{METHOD_NAME_PATTERN}|^$")
    """Unique name of the method (in URLs and in each account's record); defaults to the type."""
    display_name: str = ""
    """What the login page shows, e.g. "University account"."""
    allowed_users: list[str] = []
    """Users of this method who may log in (besides allowed_groups and admins); both empty: everyone it accepts."""
    admin_users: list[str] = []
    allowed_groups: list[str] = []
    """Groups (as the method reports them) whose members may log in."""
    admin_groups: list[str] = []
    """Groups whose members are admins of the hub."""
    manage_groups: bool = False
    """Replace a user's hub groups by the groups the method reports, at each login."""
    auth_state_env: dict[str, str] = {}
    """Values learned at login handed to the user's server as environment variables: {VARIABLE: value name},
    e.g. {GITHUB_TOKEN: access_token}. Kept encrypted in the database, renewed at each login."""

    @model_validator(mode="after")
    def _default_name(self) -> MethodBase:
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def startup_problems(self) -> list[str]:
        """Settings that make no sense together (checked once at start)."""
        return []

    def admits_all(self) -> bool:
        """Whether everyone the method accepts may enter when no allowed_users or allowed_groups are set."""
        return True


class NativeMethod(MethodBase):
    """Accounts with passwords kept by the hub (argon2)."""

    type: Literal["native"] = "native"
    allow_signup: bool = False
    """Let people ask for an account on a sign-up page; an admin approves or rejects each request."""


class PamMethod(MethodBase):
    type: Literal["pam"] = "pam"
    service: str = "login"
    """The PAM service checked (its file under /etc/pam.d)."""


class DummyMethod(MethodBase):
    type: Literal["dummy"] = "dummy"
    password: SecretStr | None = None
    """The shared password (for demos)."""

    @model_validator(mode="after")
    def _needs_password(self) -> DummyMethod:
        if self.password is None:
            raise ValueError("auth.dummy_password: the dummy authenticator needs a shared password")
        return self


class HeaderMethod(MethodBase):
    """Trusts a user name set by an institution's own login proxy (Shibboleth and the like) in front of the hub."""

    type: Literal["header"] = "header"
    header_name: str = "REMOTE_USER"
    trusted_addresses: list[str] = Field(min_length=1)
    """Addresses (IPs, CIDR networks or host names) of the front proxy; the header is refused from any other."""
    groups_header: str | None = None
    """Optional header with the user's groups, separated by groups_separator."""
    groups_separator: str = ";"


class PluginMethod(MethodBase):
    """An authenticator registered by another package (entry point group hub.authenticators)."""

    options: dict[str, Any] = {}
