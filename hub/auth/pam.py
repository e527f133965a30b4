"""Users of the host, checked through PAM with pamela (in a thread: PAM blocks)."""

from __future__ import annotations

import logging

import pamela

from hub.auth import Authenticator, AuthUnavailable, Identity, PasswordAuthenticator
from hub.auth.pool import auth_pool
from hub.auth_config import PamMethod
from hub.names import truncate

log = logging.getLogger(__name__)


class PamAuthenticator(PasswordAuthenticator):
    name = "pam"

    async def check_password(self, username: str, password: str) -> Identity | None:
        assert isinstance(self.method, PamMethod)
        service = self.method.service
        try:
            await auth_pool.run(pamela.authenticate, username, password, service=service)
        except pamela.PAMError as exc:
            log.warning("pam refused %s: %s", truncate(username), exc)
            return None
        except OSError as exc:
            raise AuthUnavailable(f"PAM is not usable: {exc}") from exc
        return Identity(username)


AUTHENTICATORS: dict[str, type[Authenticator]] = {"pam": PamAuthenticator}
