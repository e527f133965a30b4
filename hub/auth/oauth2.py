"""What every OAuth 2 login shares: the provider's HTTP, PKCE, the authorization URL and the code exchange.

The browser goes to the provider with ``state`` (checked by the hub), ``nonce`` (checked against the
ID token) and a PKCE challenge (S256: a stolen code is useless without the verifier the hub kept).
Network trouble and 5xx answers become ``AuthUnavailable``; refusals the person can act on become
``LoginRefused`` with a message in plain words.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from hub.auth import AuthUnavailable, LoginRefused, RedirectAuthenticator
from hub.i18n import L_, N_
from hub.names import truncate
from hub.oauth_config import OAuthMethodBase

log = logging.getLogger(__name__)


def pkce_pair() -> tuple[str, str]:
    """A code verifier (86 characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def basic_credentials(client_id: str, secret: str) -> str:
    """HTTP Basic credentials of a client (RFC 6749 2.3.1: each part form-encoded first)."""
    pair = f"{urlencode({'': client_id})[1:]}:{urlencode({'': secret})[1:]}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def provider_error(error: str, description: str, title: str) -> LoginRefused:
    """The refusal to show for an ``error`` the provider sent back to the callback."""
    if error == "access_denied":
        return LoginRefused(
            L_(
                "You did not allow %(title)s to tell the hub who you are, so you are not logged in. "
                "Start the login again if you want to use the hub.",
                title=title,
            ),
            f"provider answered access_denied: {truncate(description)}",
        )
    return LoginRefused(
        L_(
            "%(title)s did not log you in (%(error)s). Please start the login again.",
            title=title,
            error=truncate(error),
        ),
        f"provider answered {truncate(error)}: {truncate(description)}",
        status=400,
    )


class OAuth2Authenticator(RedirectAuthenticator):
    """The authorization code flow with PKCE; subclasses say where the endpoints are and who the user is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.method, OAuthMethodBase)
        self.config: OAuthMethodBase = self.method
        self._http: aiohttp.ClientSession | None = None

    # -- HTTP --------------------------------------------------------------------------------------------------
    def http(self) -> aiohttp.ClientSession:
        """One connection pool per method, made inside the running loop (with the configured CA file)."""
        if self._http is None or self._http.closed:
            context = ssl.create_default_context(cafile=self.config.ca_file) if self.config.ca_file else True
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.http_timeout),
                connector=aiohttp.TCPConnector(ssl=context, limit=32),
                headers={"Accept": "application/json", "User-Agent": "containerhub"},
            )
        return self._http

    def unreachable(self, detail: str) -> AuthUnavailable:
        return AuthUnavailable(
            f"{self.method.name}: {detail}",
            L_(
                "The login service %(title)s cannot be reached right now. Please try again in a few minutes.",
                title=self.method.title,
            ),
        )

    async def fetch_json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, parsed JSON or None); AuthUnavailable when the provider cannot be reached or fails (5xx)."""
        try:
            async with self.http().request(method, url, **kwargs) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise self.unreachable(f"{method} {url} failed: {type(exc).__name__} {exc}") from exc
        if status >= 500 or status == 429:
            raise self.unreachable(f"{method} {url} answered {status}")
        return status, body

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    # -- the flow ----------------------------------------------------------------------------------------------
    async def authorize_endpoint(self) -> str:
        raise NotImplementedError

    async def token_endpoint(self) -> str:
        raise NotImplementedError

    async def authorize_params(self, callback_url: str) -> tuple[dict[str, str], dict[str, str]]:
        """The query of the authorization URL and what to keep (state, nonce, code_verifier)."""
        verifier, challenge = pkce_pair()
        kept = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32), "code_verifier": verifier}
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": callback_url,
            "scope": " ".join(self.config.scope),
            "state": kept["state"],
            "nonce": kept["nonce"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **self.authorize_extras(),
        }
        return params, kept

    def authorize_extras(self) -> dict[str, str]:
        """More parameters of the authorization URL (``extra_authorize_params``, a preset's own)."""
        return dict(getattr(self.config, "extra_authorize_params", {}))

    async def begin(self, callback_url: str) -> tuple[str, dict[str, str]]:
        params, kept = await self.authorize_params(callback_url)
        return with_query(await self.authorize_endpoint(), params), kept

    def code_of(self, params: Mapping[str, str]) -> str:
        """The authorization code of the callback, or the refusal the provider sent instead."""
        if params.get("error"):
            raise provider_error(params["error"], params.get("error_description", ""), self.method.title)
        code = params.get("code", "")
        if not code:
            raise LoginRefused(
                L_(
                    "%(title)s sent the browser back without a login. Please start the login again.",
                    title=self.method.title,
                ),
                "callback without code",
                status=400,
            )
        return code

    async def exchange(self, code: str, kept: Mapping[str, str], callback_url: str) -> dict[str, Any]:
        """Trade the code (with the PKCE verifier) for tokens at the token endpoint."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback_url,
            "code_verifier": kept.get("code_verifier", ""),
        }
        headers: dict[str, str] = {}
        secret = self.config.secret()
        if secret is None:  # a public client: PKCE alone protects the code
            form["client_id"] = self.config.client_id
        elif getattr(self.config, "basic_auth", False):
            headers["Authorization"] = basic_credentials(self.config.client_id, secret)
        else:
            form |= {"client_id": self.config.client_id, "client_secret": secret}
        url = await self.token_endpoint()
        status, body = await self.fetch_json("POST", url, data=form, headers=headers)
        if not isinstance(body, dict):
            raise self.unreachable(f"token endpoint {url} answered {status} without JSON")
        error = str(body.get("error", "")) if status != 200 or "error" in body else ""
        if error or not body.get("access_token"):
            description = truncate(str(body.get("error_description", "")))
            if error in ("invalid_grant", "bad_verification_code"):
                raise LoginRefused(
                    N_("This login link was already used or has expired. Please start the login again."),
                    f"{self.method.name}: token endpoint refused the code: {error} {description}",
                    status=400,
                )
            if error in ("invalid_client", "unauthorized_client", "incorrect_client_credentials"):
                log.error("%s: the provider refuses the hub's client_id/client_secret: %s", self.method.name, error)
                raise AuthUnavailable(
                    f"{self.method.name}: client refused: {error} {description}",
                    L_(
                        "The hub's registration with %(title)s does not work. Please tell the hub's administrator.",
                        title=self.method.title,
                    ),
                )
            raise LoginRefused(
                L_("%(title)s did not complete the login. Please start the login again.", title=self.method.title),
                f"{self.method.name}: token endpoint answered {status}: {truncate(error)} {description}",
                status=400,
            )
        return body


def token_state(tokens: Mapping[str, Any]) -> dict[str, str]:
    """What the token answer holds that a user's server may want (auth_state_env picks from it)."""
    names = ("access_token", "id_token", "refresh_token", "token_type", "scope", "expires_in")
    return {name: str(tokens[name]) for name in names if tokens.get(name) not in (None, "")}
