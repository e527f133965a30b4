"""A user name asserted by the institution's own login proxy (Shibboleth, mod_auth_mellon, ...) in a header.

Only requests that come from one of ``trusted_addresses`` count: from anywhere else the header is
refused, so nobody can log in by sending it themselves. The front proxy must set (not pass on) it.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

from aiohttp import web

from hub.auth import Authenticator, HeaderAuthenticator, Identity, LoginRefused
from hub.auth_config import HeaderMethod
from hub.i18n import N_
from hub.login_guard import TrustedProxies
from hub.names import truncate

log = logging.getLogger(__name__)
RESOLVE_SECONDS = 30.0


class TrustedHeaderAuthenticator(HeaderAuthenticator):
    name: ClassVar[str] = "header"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        assert isinstance(self.method, HeaderMethod)
        self.config: HeaderMethod = self.method
        self.front = TrustedProxies(self.config.trusted_addresses)
        self._resolved_at = -RESOLVE_SECONDS

    async def identify(self, request: web.Request, client_address: str) -> Identity | None:
        if self.front.hostnames and time.monotonic() - self._resolved_at > RESOLVE_SECONDS:
            await self.front.refresh()
            self._resolved_at = time.monotonic()
        if not self.front.trusts(client_address):
            log.warning(
                "%s: header login refused from %s: not one of trusted_addresses", self.method.name, client_address
            )
            raise LoginRefused(
                N_("This way of logging in only works through your institution's login page."),
                f"header login from untrusted address {client_address}",
            )
        name = request.headers.get(self.config.header_name, "").strip()
        if not name:
            log.warning("%s: the front proxy sent no %s header", self.method.name, self.config.header_name)
            return None
        groups = None
        if self.config.groups_header is not None:
            raw = request.headers.get(self.config.groups_header, "")
            groups = frozenset(part.strip() for part in raw.split(self.config.groups_separator) if part.strip())
        log.info("%s: front proxy names %s", self.method.name, truncate(name))
        return Identity(name, groups=groups)

    def startup_warnings(self) -> list[str]:
        return [
            f"login method {self.method.name} trusts the {self.config.header_name} header from "
            f"{', '.join(self.config.trusted_addresses)}: make sure that proxy sets it on every request"
        ]


AUTHENTICATORS: dict[str, type[Authenticator]] = {"header": TrustedHeaderAuthenticator}
