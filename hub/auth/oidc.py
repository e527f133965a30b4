"""OpenID Connect login (type oidc/generic) and its presets for Google (google) and Microsoft Entra ID (entra).

The endpoints come from the issuer's discovery document (fetched when first needed, kept for an
hour, fetched again after a failure) unless the configuration names them all. The ID token must be
signed by a key the provider publishes, name the configured issuer and the hub's client id, be
fresh, and carry the ``nonce`` this login sent. The user name comes from ``username_claim``, the
groups from ``claim_groups_key`` (dotted paths such as ``realm_access.roles`` reach into objects);
when the ID token lacks them and the provider has a user-info endpoint, the hub asks there. The
token's ``sub`` is the person's fixed id: the account is bound to it at the first login.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from hub.auth import Authenticator, Identity, LoginRefused
from hub.auth.id_token import KeySet, TokenProblem, verify_id_token
from hub.auth.oauth2 import OAuth2Authenticator, token_state
from hub.i18n import L_, N_
from hub.names import truncate
from hub.oauth_config import EntraMethod, GoogleMethod, OIDCMethod

log = logging.getLogger(__name__)
DISCOVERY_SECONDS = 3600.0


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(value: Any) -> frozenset[str] | None:
    """The groups a claim lists (a list of names or one name); None when the claim is missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value}) if value else frozenset()
    if isinstance(value, list):
        return frozenset(str(item) for item in value if isinstance(item, (str, int)) and str(item))
    return frozenset()


def names_email(path: str) -> bool:
    """Whether a username_claim is an email address (``email``, or a dotted path ending in it)."""
    return path.rsplit(".", 1)[-1].lower() == "email"


def claim_state(claims: Mapping[str, Any]) -> dict[str, str]:
    """The plain (text, number, yes/no) claims, as strings, for auth_state_env to pick from."""
    skip = {"nonce", "at_hash", "c_hash", "aud", "azp", "iat", "exp", "auth_time", "sid"}
    state: dict[str, str] = {}
    for name, value in claims.items():
        if name in skip or isinstance(value, (dict, list)) or value is None:
            continue
        state[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return state


class OIDCAuthenticator(OAuth2Authenticator):
    name: ClassVar[str] = "oidc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.method, OIDCMethod)
        self.oidc: OIDCMethod = self.method
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = float("-inf")
        self.keys = KeySet(self._fetch_jwks)

    def startup_warnings(self) -> list[str]:
        warnings = []
        if self.config.secret() is None:
            warnings.append(
                f"login method {self.method.name}: no client secret (set client_secret or the environment "
                f"variable {self.config.client_secret_env}); only providers that need none will work"
            )
        return warnings

    # -- endpoints ---------------------------------------------------------------------------------------------
    @property
    def configured_issuer(self) -> str:
        return self.oidc.issuer or ""  # required by the configuration

    async def discovery(self) -> dict[str, Any]:
        """The provider's discovery document (empty when the configuration names every endpoint)."""
        if self.oidc.explicit_endpoints():
            return {}
        if self._discovery is not None and time.monotonic() - self._discovered_at < DISCOVERY_SECONDS:
            return self._discovery
        url = self.configured_issuer.rstrip("/") + "/.well-known/openid-configuration"
        status, document = await self.fetch_json("GET", url)
        if status != 200 or not isinstance(document, dict):
            raise self.unreachable(f"discovery document {url} answered {status}")
        if str(document.get("issuer", "")).rstrip("/") != self.configured_issuer.rstrip("/"):
            raise self.unreachable(f"discovery document names issuer {document.get('issuer')!r}, not the configured")
        self._discovery, self._discovered_at = document, time.monotonic()
        return document

    async def endpoint(self, configured: str | None, key: str) -> str:
        if configured:
            return configured
        value = (await self.discovery()).get(key)
        if not isinstance(value, str) or not value:
            raise self.unreachable(f"the discovery document has no {key}")
        return value

    async def authorize_endpoint(self) -> str:
        return await self.endpoint(self.oidc.authorize_url, "authorization_endpoint")

    async def token_endpoint(self) -> str:
        return await self.endpoint(self.oidc.token_url, "token_endpoint")

    async def issuer(self) -> str:
        """The issuer every ID token must name: the configured one (as the discovery document spells it)."""
        return str((await self.discovery()).get("issuer") or self.configured_issuer)

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        url = await self.endpoint(self.oidc.jwks_url, "jwks_uri")
        status, document = await self.fetch_json("GET", url)
        if status != 200 or not isinstance(document, dict):
            raise self.unreachable(f"JWKS {url} answered {status}")
        return document

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        url = self.oidc.userdata_url or (await self.discovery()).get("userinfo_endpoint")
        if not url:
            return {}
        status, body = await self.fetch_json("GET", str(url), headers={"Authorization": f"Bearer {access_token}"})
        if status != 200 or not isinstance(body, dict):
            log.warning("%s: user info endpoint answered %s", self.method.name, status)
            return {}
        return body

    # -- the callback ------------------------------------------------------------------------------------------
    async def complete(self, params: Mapping[str, str], kept: Mapping[str, str], callback_url: str) -> Identity:
        code = self.code_of(params)
        issuer = await self.issuer()
        # RFC 9207: an answer that names another issuer was meant for another login (a mix-up attack)
        if params.get("iss") and params["iss"] != issuer:
            raise self.refusal(f"callback names issuer {truncate(params['iss'])!r}")
        tokens = await self.exchange(code, kept, callback_url)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise self.refusal("token answer without id_token")
        try:
            claims = await verify_id_token(id_token, self.keys, issuer=issuer, audience=self.config.client_id)
        except TokenProblem as exc:
            raise self.refusal(str(exc), expired=exc.expired) from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), kept.get("nonce", "").encode()):
            raise self.refusal("the ID token's nonce is not this login's")
        needed = (self.oidc.username_claim, self.oidc.claim_groups_key)
        if any(claim(claims, path) is None for path in needed):
            info = await self.userinfo(str(tokens["access_token"]))
            if info and info.get("sub") == claims.get("sub"):
                claims = {**info, **claims}
        self.check_claims(claims)
        username = claim(claims, self.oidc.username_claim)
        if not isinstance(username, str) or not username.strip():
            log.warning("%s: the provider sent no %r claim", self.method.name, self.oidc.username_claim)
            raise LoginRefused(
                L_(
                    "%(title)s did not tell the hub your user name (the claim %(claim)r is missing). "
                    "Please tell the hub's administrator.",
                    title=self.method.title,
                    claim=self.oidc.username_claim,
                ),
                f"{self.method.name}: no {self.oidc.username_claim} claim",
            )
        groups = groups_of(claim(claims, self.oidc.claim_groups_key))
        subject = str(claims["sub"])
        log.info("%s: provider vouches for %s (sub %s)", self.method.name, truncate(username), truncate(subject))
        state = {**claim_state(claims), **token_state(tokens)}
        return Identity(username, groups=groups, auth_state=state, subject=subject)

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """Conditions on the verified claims (raise LoginRefused); presets add their own.

        A user name taken from an email claim must be verified when the provider says whether it is: an
        unverified address may be anybody's."""
        if names_email(self.oidc.username_claim) and str(claims.get("email_verified", "")).lower() == "false":
            log.warning("%s: refused unverified email %r", self.method.name, truncate(str(claim(claims, "email"))))
            raise LoginRefused(
                L_(
                    "Your %(title)s account's email address is not verified yet. Verify it there, then log in again.",
                    title=self.method.title,
                )
            )

    def refusal(self, detail: str, expired: bool = False) -> LoginRefused:
        log.warning("%s: login refused: %s", self.method.name, detail)
        if expired:
            message = L_(
                "The answer from %(title)s has expired, so you were not logged in. "
                "Please start the login again (if it keeps happening, the clocks may disagree).",
                title=self.method.title,
            )
        else:
            message = L_(
                "The answer from %(title)s could not be verified, so you were not logged in. "
                "Please start the login again; if it keeps happening, tell the hub's administrator.",
                title=self.method.title,
            )
        return LoginRefused(message, f"{self.method.name}: {detail}")


class GoogleAuthenticator(OIDCAuthenticator):
    """Google accounts; ``hosted_domain`` keeps out everyone outside the Workspace domains."""

    name: ClassVar[str] = "google"

    def authorize_extras(self) -> dict[str, str]:
        assert isinstance(self.method, GoogleMethod)
        domains = self.method.hosted_domain
        return {**({"hd": domains[0]} if len(domains) == 1 else {}), **super().authorize_extras()}

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        assert isinstance(self.method, GoogleMethod)
        if names_email(self.oidc.username_claim) and str(claims.get("email_verified", "")).lower() == "false":
            raise LoginRefused(
                N_("Your Google account's email address is not verified yet. Verify it with Google, then log in again.")
            )
        domains = {domain.lower() for domain in self.method.hosted_domain}
        if domains and str(claims.get("hd", "")).lower() not in domains:
            log.warning("%s: refused hosted domain %r", self.method.name, truncate(str(claims.get("hd", ""))))
            raise LoginRefused(
                L_(
                    "Only accounts of %(domains)s may use this hub. Please log in with your organisation's Google "
                    "account.",
                    domains=", ".join(sorted(domains)),
                )
            )


class EntraAuthenticator(OIDCAuthenticator):
    """Microsoft Entra ID, one tenant: the issuer names it, and so must the token's ``tid`` when present."""

    name: ClassVar[str] = "entra"

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        assert isinstance(self.method, EntraMethod)
        super().check_claims(claims)
        tenant = claims.get("tid")
        if tenant is not None and str(tenant).lower() != self.method.tenant_id.lower():
            raise self.refusal(f"the ID token's tenant {truncate(str(tenant))!r} is not {self.method.tenant_id!r}")
        if "_claim_names" in claims and "groups" in claims.get("_claim_names", {}):
            log.warning(
                "%s: the user is in too many groups for the token (Entra's group overage); groups are not known",
                self.method.name,
            )


class GenericOIDCAuthenticator(OIDCAuthenticator):
    name: ClassVar[str] = "generic"


AUTHENTICATORS: dict[str, type[Authenticator]] = {
    "oidc": OIDCAuthenticator,
    "generic": GenericOIDCAuthenticator,
    "google": GoogleAuthenticator,
    "entra": EntraAuthenticator,
    "azuread": EntraAuthenticator,
}
