"""Configuration of OpenID Connect and OAuth 2 login methods: the generic one and its presets.

Key names follow JupyterHub's OAuthenticator (client_id, client_secret, oauth_callback_url, scope,
username_claim, allowed_groups, admin_groups, ...). The client secret may come from the
environment: `client_secret_env` names the variable (OAUTH_CLIENT_SECRET when neither is set).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hub.auth_config import MethodBase

MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
"""Entra's tenant names that let accounts of any tenant in."""


class OAuthMethodBase(MethodBase):
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    client_secret_env: str = "OAUTH_CLIENT_SECRET"
    """Environment variable that holds the client secret when `client_secret` is not set."""
    oauth_callback_url: str | None = None
    """The redirect URL registered with the provider; default <hub.public_url>/hub/oauth_callback."""
    scope: list[str] = []
    allow_all: bool = False
    """Let everyone the provider accepts log in. Without it, set allowed_users, allowed_groups (or a preset's
    organisation/domain list): a public provider would otherwise admit the whole world."""
    http_timeout: float = Field(10, gt=0)
    """Seconds to wait for the provider before telling the user it is unreachable."""
    ca_file: str | None = None
    """CA bundle for the provider's TLS certificate (default: the system's)."""
    extra_authorize_params: dict[str, str] = {}
    """More parameters for the authorization URL, e.g. {prompt: select_account}."""

    def secret(self) -> str | None:
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        return os.environ.get(self.client_secret_env) or None

    def restricted(self) -> bool:
        return bool(self.allowed_users or self.allowed_groups or self.admin_users or self.admin_groups)

    def admits_all(self) -> bool:
        """Only with allow_all: a public provider accepts anybody, so without allow lists only admins enter."""
        return self.allow_all

    def startup_problems(self) -> list[str]:
        if not (self.allow_all or self.restricted()):
            return [
                f"auth method {self.name}: nobody may log in: set allowed_users, allowed_groups (or the preset's "
                "organisation/domain list), or allow_all: true"
            ]
        return []


class OIDCMethod(OAuthMethodBase):
    """Any OpenID Connect provider (Keycloak, Authentik, Dex, an institution's own)."""

    type: Literal["oidc", "generic"] = "oidc"
    issuer: str | None = None
    """The issuer URL (required): the ID token's ``iss`` must be exactly this. The endpoints come from
    <issuer>/.well-known/openid-configuration unless authorize_url, token_url and jwks_url are all given."""
    authorize_url: str | None = None
    token_url: str | None = None
    userdata_url: str | None = None
    jwks_url: str | None = None
    scope: list[str] = ["openid", "profile", "email"]
    username_claim: str = "preferred_username"
    """The claim that names the user (a dotted path reaches into objects)."""
    claim_groups_key: str = "groups"
    """The claim (in the ID token or the user info) that lists the user's groups, e.g. realm_access.roles."""
    basic_auth: bool = True
    """Send client_id and client_secret to the token endpoint as HTTP Basic credentials (else in the form)."""

    @model_validator(mode="after")
    def _needs_issuer(self) -> OIDCMethod:
        if not (self.issuer or "").strip():
            raise ValueError(
                "give issuer: the provider's issuer URL, exactly as its ID tokens name it in `iss` (also needed "
                "when authorize_url, token_url and jwks_url are given: every ID token's issuer is checked)"
            )
        return self

    def explicit_endpoints(self) -> bool:
        """Whether the configuration names every endpoint the login needs (then no discovery document is read)."""
        return bool(self.authorize_url and self.token_url and self.jwks_url)


class GoogleMethod(OIDCMethod):
    type: Literal["google"] = "google"  # type: ignore[assignment]
    issuer: str | None = "https://accounts.google.com"
    username_claim: str = "email"
    hosted_domain: list[str] = []
    """Google Workspace domains whose accounts may log in (the `hd` claim)."""

    def restricted(self) -> bool:
        return super().restricted() or bool(self.hosted_domain)

    def admits_all(self) -> bool:
        return self.allow_all or bool(self.hosted_domain)  # the domain is checked when the login completes


class EntraMethod(OIDCMethod):
    """Microsoft Entra ID (Azure AD)."""

    type: Literal["entra", "azuread"] = "entra"  # type: ignore[assignment]
    tenant_id: str = Field(min_length=1)
    """The directory (tenant) id of one tenant; the token's ``tid`` must name it. Multi-tenant logins
    ("common", "organizations", "consumers") are refused: anyone with any Microsoft account could log in."""
    username_claim: str = "preferred_username"

    @field_validator("tenant_id")
    @classmethod
    def _one_tenant(cls, tenant_id: str) -> str:
        tenant_id = tenant_id.strip()
        if tenant_id.lower() in MULTI_TENANT or "{" in tenant_id or "/" in tenant_id:
            raise ValueError(
                f"tenant_id {tenant_id!r}: give your tenant's id: multi-tenant logins are not supported (the id is "
                "the Directory (tenant) ID in the Entra admin center)"
            )
        return tenant_id

    @model_validator(mode="before")
    @classmethod
    def _issuer_of_tenant(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("issuer") and data.get("tenant_id"):
            data = {**data, "issuer": f"https://login.microsoftonline.com/{str(data['tenant_id']).strip()}/v2.0"}
        return data

    @model_validator(mode="after")
    def _issuer_of_one_tenant(self) -> EntraMethod:
        if "{" in (self.issuer or ""):
            raise ValueError(
                f"issuer {self.issuer!r}: give your tenant's issuer (or leave issuer out): multi-tenant logins are "
                "not supported"
            )
        return self


class GitHubMethod(OAuthMethodBase):
    """GitHub's OAuth 2 (not OpenID Connect): the user name is the GitHub login."""

    type: Literal["github"] = "github"
    github_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    scope: list[str] = ["read:org"]
    allowed_organizations: list[str] = []
    """Organisations (`org`) or teams (`org:team`, the team's slug) whose members may log in. The user's
    organisations and teams are reported as groups of these names, so they also work in admin_groups. With
    manage_groups or admin_groups, only organisations named here, in allowed_groups or in admin_groups (and
    their teams) become groups."""

    @model_validator(mode="after")
    def _organizations_are_groups(self) -> GitHubMethod:
        """GitHub's names ignore case: the hub writes them in lower case, and counts them as allowed groups."""
        organizations = [entry.lower() for entry in self.allowed_organizations]
        admin_groups = [entry.lower() for entry in self.admin_groups]
        allowed = [entry.lower() for entry in self.allowed_groups]
        object.__setattr__(self, "allowed_organizations", organizations)
        object.__setattr__(self, "admin_groups", admin_groups)
        object.__setattr__(self, "allowed_groups", [*allowed, *(e for e in organizations if e not in allowed)])
        return self

    def restricted(self) -> bool:
        return super().restricted() or bool(self.allowed_organizations)

    def group_organizations(self) -> frozenset[str]:
        """The organisations named in allowed_organizations, allowed_groups and admin_groups (``org`` or
        ``org:team``): only their organisations and teams become groups, so nobody can make a hub group
        by creating a GitHub organisation of the same name."""
        entries = [*self.allowed_organizations, *self.allowed_groups, *self.admin_groups]
        return frozenset(entry.partition(":")[0] for entry in entries if entry.partition(":")[0])
