"""The OpenID Connect login against a real provider (npm's oidc-provider), without the rest of the hub:
the authorization URL, the provider's login page, the code exchange with PKCE and the ID token checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hub.auth import AuthUnavailable, Identity, LoginRefused
from hub.auth.id_token import TokenProblem, verify_id_token
from hub.auth.oidc import OIDCAuthenticator
from hub.config import Settings
from tests.fixtures.oidc_provider import OIDCProvider, sign_in_at_provider
from tests.fixtures.traefik import free_port

CALLBACK = "http://127.0.0.1:9/hub/oauth_callback"
IMAGES = [{"name": "lab", "image": "example/lab"}]
Make = Callable[..., OIDCAuthenticator]


@pytest.fixture(scope="module")
def client(oidc_provider: OIDCProvider) -> tuple[str, str]:
    return oidc_provider.register_client(CALLBACK)


@pytest.fixture
async def make(oidc_provider: OIDCProvider, client: tuple[str, str]) -> AsyncIterator[Make]:
    made: list[OIDCAuthenticator] = []

    def build(**options: Any) -> OIDCAuthenticator:
        method = {
            "type": "oidc",
            "name": "test",
            "display_name": "Test Provider",
            "issuer": oidc_provider.issuer,
            "client_id": client[0],
            "client_secret": client[1],
            "scope": ["openid", "profile", "email", "groups", "hub"],
            "allow_all": True,
            "http_timeout": 3,
            **options,
        }
        settings = Settings(images=IMAGES, auth={"methods": [method]})  # type: ignore[arg-type]
        backend = OIDCAuthenticator(settings.auth.methods[0], settings, None)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.close()


@contextmanager
def refused(text: str) -> Iterator[None]:
    """The block ends in LoginRefused whose message for the person holds ``text``."""
    with pytest.raises(LoginRefused) as caught:
        yield
    assert text in caught.value.user_message


async def answer(backend: OIDCAuthenticator, name: str, cancel: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Begin a login, sign in at the provider, and return (callback query, what the hub kept)."""
    url, kept = await backend.begin(CALLBACK)
    back = await asyncio.to_thread(sign_in_at_provider, requests.Session(), url, name, CALLBACK, cancel=cancel)
    query = {key: values[0] for key, values in parse_qs(urlsplit(back).query).items()}
    assert query.get("state") == kept["state"]
    return query, kept


async def log_in(backend: OIDCAuthenticator, name: str) -> Identity:
    query, kept = await answer(backend, name)
    return await backend.complete(query, kept, CALLBACK)


async def test_the_authorization_url_asks_for_a_code_with_pkce_state_and_nonce(make: Make) -> None:
    url, kept = await make().begin(CALLBACK)
    query = parse_qs(urlsplit(url).query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["state"] == [kept["state"]] and query["nonce"] == [kept["nonce"]]
    assert query["redirect_uri"] == [CALLBACK] and query["scope"] == ["openid profile email groups hub"]
    assert kept["code_verifier"] not in url and len(kept["code_verifier"]) >= 43


async def test_alice_logs_in_with_her_name_groups_and_tokens(make: Make) -> None:
    identity = await log_in(make(), "alice")
    assert identity.username == "alice" and identity.subject == "alice"  # the provider's sub
    assert identity.groups == {"hub-users", "science"}
    assert identity.auth_state["project_token"] == "project-token-of-alice"
    assert identity.auth_state["access_token"] and identity.auth_state["id_token"].count(".") == 2
    assert "nonce" not in identity.auth_state


async def test_the_user_name_and_groups_can_come_from_other_claims(make: Make) -> None:
    identity = await log_in(make(username_claim="email", claim_groups_key="name"), "bob")
    assert identity.username == "bob@example.org"
    assert identity.groups == {"Bob Builder"}


async def test_the_subject_stays_when_the_user_name_changes_hands(make: Make, oidc_provider: OIDCProvider) -> None:
    oidc_provider.add_user("sub-grace-1", username="grace")
    oidc_provider.add_user("sub-grace-2", username="grace")
    first, second = await log_in(make(), "sub-grace-1"), await log_in(make(), "sub-grace-2")
    assert first.username == second.username == "grace"
    assert (first.subject, second.subject) == ("sub-grace-1", "sub-grace-2")


async def test_a_user_name_from_an_unverified_email_is_refused(make: Make, oidc_provider: OIDCProvider) -> None:
    oidc_provider.add_user("heidi", email="heidi@example.org", email_verified=False)
    with refused("Your Test Provider account's email address is not verified yet"):
        await log_in(make(username_claim="email"), "heidi")
    assert (await log_in(make(), "heidi")).username == "heidi"  # the name is not the email: no matter


async def test_named_endpoints_are_used_without_discovery_but_the_issuer_is_checked(
    make: Make, oidc_provider: OIDCProvider
) -> None:
    document = requests.get(f"{oidc_provider.issuer}/.well-known/openid-configuration", timeout=10).json()
    endpoints = {
        "authorize_url": document["authorization_endpoint"],
        "token_url": document["token_endpoint"],
        "jwks_url": document["jwks_uri"],
    }
    backend = make(**endpoints)
    assert (await log_in(backend, "alice")).username == "alice"
    assert backend._discovery is None  # nothing fetched from /.well-known

    # another issuer configured: no discovery (that would be unreachable), and the token's iss is refused
    other = make(**endpoints, issuer=f"http://127.0.0.1:{free_port()}")
    query, kept = await answer(other, "alice")
    with refused("could not be verified"):
        await other.complete(query, kept, CALLBACK)  # the callback's iss (RFC 9207)
    query, kept = await answer(other, "alice")
    del query["iss"]
    with pytest.raises(LoginRefused) as caught:
        await other.complete(query, kept, CALLBACK)  # the ID token's iss
    assert "could not be verified" in caught.value.user_message and "issuer" in str(caught.value).lower()


async def test_a_user_without_the_name_claim_is_told_why(make: Make) -> None:
    with refused("did not tell the hub your user name"):
        await log_in(make(), "nameless")


async def test_a_nonce_of_another_login_is_refused(make: Make) -> None:
    backend = make()
    query, kept = await answer(backend, "alice")
    with refused("could not be verified"):
        await backend.complete(query, {**kept, "nonce": "another-login"}, CALLBACK)


async def test_an_answer_that_names_another_issuer_is_refused_before_the_code_is_used(make: Make) -> None:
    backend = make()
    query, kept = await answer(backend, "alice")
    assert query["iss"] == backend.oidc.issuer
    with refused("could not be verified"):
        await backend.complete({**query, "iss": "https://evil.example"}, kept, CALLBACK)
    assert (await backend.complete(query, kept, CALLBACK)).username == "alice"


async def test_a_code_without_its_pkce_verifier_is_refused_by_the_provider(make: Make) -> None:
    backend = make()
    query, kept = await answer(backend, "alice")
    with refused("already used or has expired"):
        await backend.complete(query, {**kept, "code_verifier": "x" * 64}, CALLBACK)


async def test_a_replayed_code_is_refused(make: Make) -> None:
    backend = make()
    query, kept = await answer(backend, "alice")
    await backend.complete(query, kept, CALLBACK)
    with refused("already used or has expired"):
        await backend.complete(query, kept, CALLBACK)


async def test_a_token_signed_by_another_key_is_refused(make: Make, oidc_provider: OIDCProvider) -> None:
    backend = make(token_url=oidc_provider.misbehaving_token_url("other-key"))
    with refused("could not be verified"):
        await log_in(backend, "alice")


async def test_an_unknown_key_makes_the_hub_fetch_the_keys_again_but_not_at_every_login(
    make: Make, oidc_provider: OIDCProvider
) -> None:
    backend = make(token_url=oidc_provider.misbehaving_token_url("unknown-kid"))
    backend.keys.refetch_seconds = 0  # as if the keys were fetched long ago
    with refused("could not be verified"):
        await log_in(backend, "alice")
    assert backend.keys.fetches == 2  # when first needed, and again for the unknown key id
    backend.keys.refetch_seconds = 3600
    with refused("could not be verified"):
        await log_in(backend, "bob")
    assert backend.keys.fetches == 2


async def test_an_expired_token_is_refused(make: Make, oidc_provider: OIDCProvider) -> None:
    backend = make(token_url=oidc_provider.misbehaving_token_url("expired"))
    with refused("has expired"):
        await log_in(backend, "alice")


async def test_a_token_for_another_client_or_issuer_does_not_verify(make: Make, oidc_provider: OIDCProvider) -> None:
    backend = make()
    token = (await log_in(backend, "alice")).auth_state["id_token"]
    audience = backend.config.client_id
    assert (await verify_id_token(token, backend.keys, issuer=oidc_provider.issuer, audience=audience))["sub"]
    with pytest.raises(TokenProblem, match="(?i)audience"):
        await verify_id_token(token, backend.keys, issuer=oidc_provider.issuer, audience="another-client")
    with pytest.raises(TokenProblem, match="(?i)issuer"):
        await verify_id_token(token, backend.keys, issuer="https://elsewhere.example", audience=audience)
    with pytest.raises(TokenProblem, match="does not verify"):
        head, body, signature = token.split(".")
        signature = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        await verify_id_token(
            f"{head}.{body}.{signature}", backend.keys, issuer=oidc_provider.issuer, audience=audience
        )


async def test_pressing_cancel_at_the_provider_is_explained(make: Make) -> None:
    backend = make()
    query, kept = await answer(backend, "alice", cancel=True)
    assert query["error"] == "access_denied"
    with refused("You did not allow Test Provider"):
        await backend.complete(query, kept, CALLBACK)


async def test_a_provider_that_is_down_is_reported_as_unreachable(make: Make) -> None:
    backend = make(issuer=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AuthUnavailable) as caught:
        await backend.begin(CALLBACK)
    assert "Test Provider cannot be reached right now" in caught.value.user_message


async def test_a_wrong_client_secret_is_the_administrators_problem(make: Make) -> None:
    backend = make(client_secret="not-the-secret")
    query, kept = await answer(backend, "alice")
    with pytest.raises(AuthUnavailable) as caught:
        await backend.complete(query, kept, CALLBACK)
    assert "tell the hub's administrator" in caught.value.user_message


async def test_the_client_secret_can_come_from_the_environment(
    make: Make, client: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_OIDC_SECRET", client[1])
    backend = make(client_secret=None, client_secret_env="TEST_OIDC_SECRET")
    assert (await log_in(backend, "carol")).username == "carol"
