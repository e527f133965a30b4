"""OpenID Connect and OAuth settings and the presets' own rules, without a provider."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from hub.auth import LoginRefused
from hub.auth.id_token import KeySet
from hub.auth.oauth2 import basic_credentials, pkce_pair, with_query
from hub.auth.oidc import EntraAuthenticator, GoogleAuthenticator, OIDCAuthenticator, claim, groups_of
from hub.config import Settings
from hub.oauth_config import EntraMethod, GitHubMethod, GoogleMethod, OIDCMethod

IMAGES = [{"name": "lab", "image": "example/lab"}]


def method(**entry: Any) -> Any:
    return Settings(images=IMAGES, auth={"methods": [entry]}).auth.methods[0]  # type: ignore[arg-type]


def test_jupyterhub_style_keys_make_an_oidc_method() -> None:
    oidc = method(
        type="generic",
        name="uni",
        issuer="https://sso.example.org/realms/uni",
        client_id="hub",
        oauth_callback_url="https://hub.example.org/hub/oauth_callback",
        scope=["openid", "email"],
        username_claim="email",
        claim_groups_key="realm_access.roles",
        allowed_groups=["students"],
        admin_groups=["staff"],
    )
    assert isinstance(oidc, OIDCMethod) and oidc.startup_problems() == []
    assert oidc.basic_auth is True


def test_an_open_provider_without_any_restriction_does_not_start() -> None:
    with pytest.raises(ValueError, match="nobody may log in"):
        method(type="oidc", issuer="https://sso.example.org", client_id="hub")
    assert (
        method(type="oidc", issuer="https://sso.example.org", client_id="hub", allow_all=True).startup_problems() == []
    )


def test_the_issuer_is_always_needed_even_with_every_endpoint_named() -> None:
    endpoints = {
        "authorize_url": "https://sso.example.org/auth",
        "token_url": "https://sso.example.org/token",
        "jwks_url": "https://sso.example.org/jwks",
    }
    for entry in ({}, endpoints, {**endpoints, "issuer": " "}):
        with pytest.raises(ValueError, match="give issuer: the provider's issuer URL"):
            method(type="oidc", client_id="hub", allow_all=True, **entry)
    named = method(type="oidc", client_id="hub", allow_all=True, issuer="https://sso.example.org", **endpoints)
    assert named.explicit_endpoints()
    partly = {"authorize_url": endpoints["authorize_url"]}
    assert not method(
        type="oidc", client_id="hub", allow_all=True, issuer="https://x.example", **partly
    ).explicit_endpoints()


def test_the_client_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "from-env")
    oidc = method(type="oidc", issuer="https://sso.example.org", client_id="hub", allow_all=True)
    assert oidc.secret() == "from-env"
    assert "from-env" not in repr(oidc)
    written = method(type="oidc", issuer="https://sso.example.org", client_id="hub", client_secret="s", allow_all=True)
    assert written.secret() == "s" and "'s'" not in repr(written)


def test_presets_fill_in_their_issuer() -> None:
    google = method(type="google", client_id="hub", hosted_domain=["example.org"])
    assert isinstance(google, GoogleMethod) and google.issuer == "https://accounts.google.com"
    assert google.username_claim == "email" and google.startup_problems() == []
    entra = method(type="azuread", client_id="hub", tenant_id="0000-tenant", allowed_groups=["g"])
    assert isinstance(entra, EntraMethod) and entra.issuer == "https://login.microsoftonline.com/0000-tenant/v2.0"
    with pytest.raises(ValueError, match="tenant_id"):
        method(type="entra", client_id="hub", allow_all=True)


def test_github_organisations_and_teams_count_as_allowed_groups() -> None:
    github = method(type="github", client_id="hub", allowed_organizations=["acme", "acme:staff"], allowed_groups=["x"])
    assert isinstance(github, GitHubMethod)
    assert github.allowed_groups == ["x", "acme", "acme:staff"] and github.startup_problems() == []


def test_claims_are_found_by_name_or_dotted_path() -> None:
    claims = {"realm_access": {"roles": ["a", "b"]}, "groups": "solo", "odd.name": "x"}
    assert claim(claims, "realm_access.roles") == ["a", "b"]
    assert claim(claims, "odd.name") == "x"
    assert claim(claims, "realm_access.missing") is None
    assert groups_of(claim(claims, "realm_access.roles")) == {"a", "b"}
    assert groups_of("solo") == {"solo"}
    assert groups_of(None) is None
    assert groups_of({"not": "a list"}) == frozenset()


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and pkce_pair()[0] != verifier
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == digest


def test_query_parameters_are_added_to_an_endpoint_that_has_some() -> None:
    assert (
        with_query("https://x.example/auth?tenant=a", {"state": "s&t"}) == "https://x.example/auth?tenant=a&state=s%26t"
    )
    assert basic_credentials("hub client", "p:w") == "Basic aHViK2NsaWVudDpwJTNBdw=="


def google(**options: Any) -> GoogleAuthenticator:
    entry = {"type": "google", "client_id": "hub", "allow_all": True, **options}
    settings = Settings(images=IMAGES, auth={"methods": [entry]})  # type: ignore[arg-type]
    return GoogleAuthenticator(settings.auth.methods[0], settings, None)  # type: ignore[arg-type]


def test_google_accounts_outside_the_hosted_domain_are_refused() -> None:
    backend = google(hosted_domain=["example.org"])
    assert backend.authorize_extras() == {"hd": "example.org"}
    backend.check_claims({"email": "a@example.org", "email_verified": True, "hd": "example.org"})
    for claims in ({"email": "a@gmail.com", "email_verified": True}, {"hd": "evil.example", "email_verified": True}):
        with pytest.raises(LoginRefused) as caught:
            backend.check_claims(claims)
        assert "Only accounts of example.org may use this hub" in caught.value.user_message
    with pytest.raises(LoginRefused, match="not verified"):
        google().check_claims({"email": "a@gmail.com", "email_verified": False})


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers", "Common", "{tenantid}"])
def test_entra_refuses_multi_tenant_logins(tenant: str) -> None:
    with pytest.raises(ValueError, match="give your tenant's id: multi-tenant logins are not supported"):
        method(type="entra", client_id="hub", tenant_id=tenant, allow_all=True)


def test_entra_refuses_an_issuer_of_any_tenant() -> None:
    issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
    with pytest.raises(ValueError, match="multi-tenant logins are not supported"):
        method(type="entra", client_id="hub", tenant_id="t-1", issuer=issuer, allow_all=True)


def entra(tenant: str) -> EntraAuthenticator:
    entry = {"type": "entra", "client_id": "hub", "tenant_id": tenant, "allow_all": True}
    settings = Settings(images=IMAGES, auth={"methods": [entry]})  # type: ignore[arg-type]
    return EntraAuthenticator(settings.auth.methods[0], settings, None)  # type: ignore[arg-type]


def test_entra_tokens_of_another_tenant_are_refused() -> None:
    backend = entra("0a1b2c3d-0000-1111-2222-333333333333")
    assert backend.oidc.issuer == "https://login.microsoftonline.com/0a1b2c3d-0000-1111-2222-333333333333/v2.0"
    backend.check_claims({"tid": "0A1B2C3D-0000-1111-2222-333333333333"})
    backend.check_claims({})  # no tid: the issuer (checked with the signature) names the tenant
    with pytest.raises(LoginRefused) as caught:
        backend.check_claims({"tid": "99999999-0000-1111-2222-333333333333"})
    assert "could not be verified" in caught.value.user_message


def oidc(**options: Any) -> OIDCAuthenticator:
    entry = {"type": "generic", "client_id": "hub", "issuer": "https://sso.example.org", "allow_all": True, **options}
    settings = Settings(images=IMAGES, auth={"methods": [entry]})  # type: ignore[arg-type]
    return OIDCAuthenticator(settings.auth.methods[0], settings, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("username_claim", ["email", "profile.email"])
def test_a_user_name_from_an_unverified_email_is_refused(username_claim: str) -> None:
    backend = oidc(username_claim=username_claim, display_name="Uni")
    for verified in (False, "false", "False"):
        with pytest.raises(LoginRefused) as caught:
            backend.check_claims({"email": "a@example.org", "email_verified": verified})
        assert "Your Uni account's email address is not verified yet" in caught.value.user_message
    backend.check_claims({"email": "a@example.org", "email_verified": True})
    backend.check_claims({"email": "a@example.org"})  # the provider does not say: its own affair
    oidc().check_claims({"preferred_username": "a", "email_verified": False})  # the name is not the email


async def test_unknown_key_ids_refetch_the_keys_at_most_once_per_interval() -> None:
    published = [{"keys": [{"kid": "one", "kty": "RSA"}]}]
    calls = 0

    async def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return published[-1]

    keys = KeySet(fetch, refetch_seconds=3600)
    assert [key["kid"] for key in await keys.keys_for("one")] == ["one"]
    assert await keys.keys_for("forged") == [] and calls == 1  # fetched just now: not again
    keys.refetch_seconds = 0
    published.append({"keys": [{"kid": "two", "kty": "RSA"}, {"kid": "enc", "use": "enc", "kty": "RSA"}]})
    assert [key["kid"] for key in await keys.keys_for("two")] == ["two"] and calls == 2
    assert await keys.keys_for("enc") == [] and calls == 3  # an encryption key does not sign
    assert await keys.keys_for("two") and calls == 3  # known: no fetch
