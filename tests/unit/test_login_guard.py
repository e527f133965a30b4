"""Login throttling limits guesses (also when they arrive all at once) and believes only trusted proxies."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from hub.login_guard import LockedOut, LoginThrottle, TrustedProxies


def test_an_account_is_locked_after_its_failures_and_says_for_how_long() -> None:
    throttle = LoginThrottle(max_failures_per_account=3, lockout=120)
    for _ in range(3):
        throttle.claim("user:alice", "addr:1").failed()
    with pytest.raises(LockedOut) as locked:
        throttle.claim("user:alice", "addr:2")  # another address does not help
    assert 100 < locked.value.seconds <= 120
    throttle.claim("user:bob", "addr:2").succeeded()  # other accounts are not affected


def test_a_success_clears_the_accounts_failures() -> None:
    throttle = LoginThrottle(max_failures_per_account=3)
    for _ in range(2):
        throttle.claim("user:alice", "addr:1").failed()
    throttle.claim("user:alice", "addr:1").succeeded()
    for _ in range(2):
        throttle.claim("user:alice", "addr:1").failed()
    throttle.claim("user:alice", "addr:1")


def test_one_client_guessing_many_accounts_is_locked_too() -> None:
    throttle = LoginThrottle(max_failures_per_account=5, max_failures_per_client=4)
    for number in range(4):
        throttle.claim(f"user:u{number}", "addr:9").failed()
    with pytest.raises(LockedOut):
        throttle.claim("user:someone-else", "addr:9")


async def test_forty_guesses_at_once_get_no_further_than_the_limit() -> None:
    throttle = LoginThrottle(max_failures_per_account=5)
    checked = 0

    async def guess(number: int) -> None:
        nonlocal checked
        try:
            attempt = throttle.claim("user:alice", f"addr:{number}")
        except LockedOut:
            return
        checked += 1
        await asyncio.sleep(0.05)  # the password check takes time; the others arrive meanwhile
        attempt.failed()

    await asyncio.gather(*(guess(number) for number in range(40)))
    assert checked == 5
    with pytest.raises(LockedOut):
        throttle.claim("user:alice", "addr:99")


def test_an_attempt_that_could_not_be_checked_does_not_count() -> None:
    throttle = LoginThrottle(max_failures_per_account=1)
    throttle.claim("user:alice", "addr:1").abandoned()
    throttle.claim("user:alice", "addr:1").succeeded()


def request_from(remote: str, forwarded: str | None) -> object:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = make_mocked_request("POST", "/hub/login", headers=headers)
    request._transport_peername = (remote, 1234)  # type: ignore[attr-defined]  # what the socket would say
    return request


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.client_address(request_from("127.0.0.1", "203.0.113.9")) == "203.0.113.9"  # type: ignore[arg-type]
    assert proxies.client_address(request_from("10.1.2.3", "203.0.113.9")) == "203.0.113.9"  # type: ignore[arg-type]
    # someone reaching the hub directly cannot choose the address they are counted under
    assert proxies.client_address(request_from("172.18.0.5", "203.0.113.9")) == "172.18.0.5"  # type: ignore[arg-type]
    # a client's own X-Forwarded-For is to the left of what the trusted proxy added
    assert proxies.client_address(request_from("127.0.0.1", "1.2.3.4, 203.0.113.9")) == "203.0.113.9"  # type: ignore[arg-type]


async def test_trusted_proxies_may_be_host_names() -> None:
    proxies = TrustedProxies(["localhost"])
    assert not proxies.trusts("127.0.0.1")
    await proxies.refresh()
    assert proxies.trusts("127.0.0.1")
