"""Any user name with one shared password: for demos and tests only."""

from __future__ import annotations

import secrets

from hub.auth import Authenticator, Identity, PasswordAuthenticator
from hub.auth_config import DummyMethod


class DummyAuthenticator(PasswordAuthenticator):
    name = "dummy"

    async def check_password(self, username: str, password: str) -> Identity | None:
        assert isinstance(self.method, DummyMethod)
        expected = self.method.password
        if expected is None:
            return None
        if not secrets.compare_digest(password.encode(), expected.get_secret_value().encode()):
            return None
        return Identity(username)

    def startup_warnings(self) -> list[str]:
        return ["the dummy authenticator lets anyone log in with the shared password: use it only for demos"]


AUTHENTICATORS: dict[str, type[Authenticator]] = {"dummy": DummyAuthenticator}
