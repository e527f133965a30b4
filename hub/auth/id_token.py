"""Checking an OpenID Connect ID token: signature against the provider's published keys (JWKS), issuer,
audience, expiry and time of issue (PyJWT does the cryptography).

Providers rotate their keys: a token signed with a key id (``kid``) the hub does not know makes it
fetch the key set again, at most once every ``REFETCH_SECONDS``, so forged key ids cannot make the
hub hammer the provider. Only asymmetric algorithms are accepted (never ``none`` or HMAC).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jwt

log = logging.getLogger(__name__)
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
REFETCH_SECONDS = 10.0
LEEWAY_SECONDS = 60
MAX_AGE_SECONDS = 3600 * 6


class TokenProblem(Exception):
    """The ID token does not hold up; the message is for the log, ``expired`` picks the user's message."""

    def __init__(self, detail: str, expired: bool = False) -> None:
        super().__init__(detail)
        self.expired = expired


class KeySet:
    """The provider's signing keys by key id, fetched lazily and again when an unknown key id turns up."""

    def __init__(self, fetch: Callable[[], Awaitable[Mapping[str, Any]]], refetch_seconds: float = REFETCH_SECONDS):
        self._fetch = fetch
        self.refetch_seconds = refetch_seconds
        self._keys: list[dict[str, Any]] | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _load(self) -> None:
        document = await self._fetch()
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise TokenProblem("the provider's JWKS holds no key list")
        self._keys = [key for key in keys if isinstance(key, dict) and key.get("use", "sig") == "sig"]
        self._fetched_at = time.monotonic()
        self.fetches += 1

    def _find(self, kid: str | None) -> list[dict[str, Any]]:
        keys = self._keys or []
        if kid is None:
            return keys if len(keys) == 1 else []
        return [key for key in keys if key.get("kid") == kid]

    async def keys_for(self, kid: str | None) -> list[dict[str, Any]]:
        async with self._lock:
            if self._keys is None:
                await self._load()
            found = self._find(kid)
            if not found and time.monotonic() - self._fetched_at >= self.refetch_seconds:
                log.info("ID token signed with unknown key %r: fetching the provider's keys again", kid)
                await self._load()
                found = self._find(kid)
        return found


async def verify_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    algorithms: frozenset[str] = ASYMMETRIC,
    leeway: int = LEEWAY_SECONDS,
) -> dict[str, Any]:
    """The token's claims once signature, iss (exactly ``issuer``), aud, exp and iat hold; TokenProblem otherwise."""
    if not issuer:
        raise TokenProblem("no issuer to check the ID token against")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenProblem(f"unreadable ID token: {exc}") from exc
    alg = header.get("alg")
    if alg not in algorithms & ASYMMETRIC:
        raise TokenProblem(f"ID token signed with algorithm {alg!r}, which the hub does not accept")
    kid = header.get("kid")
    candidates = await keys.keys_for(kid if isinstance(kid, str) else None)
    if not candidates:
        raise TokenProblem(f"ID token signed with key {kid!r}, which the provider does not publish")
    last: Exception | None = None
    for jwk in candidates:
        if jwk.get("alg", alg) != alg:
            last = TokenProblem(f"key {kid!r} is for {jwk.get('alg')}, the token says {alg}")
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenProblem(f"ID token expired: {exc}", expired=True) from exc
        except (jwt.PyJWTError, ValueError) as exc:
            last = exc
            continue
        check_times(claims, leeway)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != audience:
            raise TokenProblem(f"ID token for several audiences, but azp is {claims.get('azp')!r}")
        return claims
    raise TokenProblem(f"ID token does not verify: {last}")


def check_times(claims: Mapping[str, Any], leeway: int) -> None:
    """iat must be a number, not in the future and not ages ago (a token kept and replayed)."""
    issued = claims.get("iat")
    if not isinstance(issued, (int, float)):
        raise TokenProblem("ID token without a numeric iat")
    now = time.time()
    if issued > now + leeway:
        raise TokenProblem(f"ID token issued {issued - now:.0f} s in the future (clocks disagree?)")
    if issued < now - MAX_AGE_SECONDS:
        raise TokenProblem(f"ID token issued {now - issued:.0f} s ago", expired=True)
