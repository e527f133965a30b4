"""Forward auth's cached read of the session cookie."""

from __future__ import annotations

import base64
import json
import time

from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from hub.session_reader import SessionReader

KEY = b"k" * 32


def cookie(content: dict[str, object], at: float | None = None, created: float | None = None) -> str:
    data = json.dumps({"created": int(created or at or time.time()), "session": content}).encode()
    fernet = Fernet(base64.urlsafe_b64encode(KEY))
    return (fernet.encrypt_at_time(data, int(at)) if at is not None else fernet.encrypt(data)).decode()


def request_with(value: str):  # type: ignore[no-untyped-def]
    return make_mocked_request("GET", "/", headers={"Cookie": f"hub-session={value}"})


def test_a_cookie_is_decrypted_once_and_read_from_memory_after() -> None:
    reader = SessionReader(KEY, "hub-session", max_age=3600)
    value = cookie({"user": "alice", "uid": 1, "iat": 5.0})
    assert reader.read(request_with(value)) == {"user": "alice", "uid": 1, "iat": 5.0}
    reader._fernet = None  # type: ignore[assignment]  # a second decryption would now fail
    assert reader.read(request_with(value))["user"] == "alice"


def test_forged_expired_and_missing_cookies_hold_no_session() -> None:
    reader = SessionReader(KEY, "hub-session", max_age=3600)
    assert reader.read(make_mocked_request("GET", "/")) == {}
    assert reader.read(request_with("not-a-token")) == {}
    other = Fernet(Fernet.generate_key()).encrypt(b'{"session": {"user": "mallory"}}').decode()
    assert reader.read(request_with(other)) == {}
    old = cookie({"user": "alice"}, at=time.time() - 7200)  # older than max_age
    assert reader.read(request_with(old)) == {}


def test_a_cookie_is_not_kept_past_its_own_expiry() -> None:
    reader = SessionReader(KEY, "hub-session", max_age=3600)
    value = cookie({"user": "alice"}, at=time.time() - 3598)  # about two seconds left (Fernet counts whole seconds)
    assert reader.read(request_with(value))["user"] == "alice"
    time.sleep(3.1)
    assert reader.read(request_with(value)) == {}


def test_a_session_older_than_its_maximum_age_holds_nothing_however_fresh_its_cookie() -> None:
    reader = SessionReader(KEY, "hub-session", max_age=3600)
    resaved = cookie({"user": "alice"}, at=time.time(), created=time.time() - 3700)  # re-saved a moment ago
    assert reader.read(request_with(resaved)) == {}
