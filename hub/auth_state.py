"""What a login method hands to the user's server (``auth_state_env``), encrypted at rest.

Values are chosen per method in the configuration ({VARIABLE: value name}), picked from what the
login learned, encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) and kept
in ``users.auth_state``. They are renewed (or cleared) at each login, decrypted only to start the
user's server, and never logged or shown. The key is HUB_CRYPT_KEY (one or more Fernet keys
separated by ``;``, the first encrypts: rotation) or a file in the data folder made at first use.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)
KEY_ENV = "HUB_CRYPT_KEY"


def load_keys(path: Path) -> MultiFernet:
    """The keys from HUB_CRYPT_KEY, else from ``path`` (made, mode 0600, when missing)."""
    from_env = [key.strip() for key in os.environ.get(KEY_ENV, "").split(";") if key.strip()]
    if from_env:
        return MultiFernet([Fernet(key) for key in from_env])
    try:
        return MultiFernet([Fernet(path.read_bytes().strip())])
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key)
    os.replace(tmp, path)
    return MultiFernet([Fernet(key)])


def pick(wanted: Mapping[str, str], learned: Mapping[str, str]) -> dict[str, str]:
    """{VARIABLE: value} for each configured variable whose value the login learned."""
    return {variable: str(learned[name]) for variable, name in wanted.items() if learned.get(name)}


class AuthStateBox:
    """Encrypts and decrypts the environment a login hands to servers."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._keys: MultiFernet | None = None

    @property
    def keys(self) -> MultiFernet:
        if self._keys is None:
            self._keys = load_keys(self.key_file)
        return self._keys

    def seal(self, values: Mapping[str, str]) -> str | None:
        if not values:
            return None
        return self.keys.encrypt(json.dumps(dict(values)).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        """The values, or nothing when there are none or the key changed (logged for the admin)."""
        if not sealed:
            return {}
        try:
            values = json.loads(self.keys.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            log.warning("stored login values cannot be decrypted (was the key changed?); they are skipped")
            return {}
        return {str(key): str(value) for key, value in values.items()} if isinstance(values, dict) else {}
