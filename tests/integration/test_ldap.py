"""The LDAP authenticator against a real slapd: binds, groups, refusals, injection attempts, a dead directory."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.auth import AccessPolicy, AuthUnavailable, Identity, LoginMethods, LoginRefused
from hub.auth.ldap import LDAPAuthenticator
from hub.config import Settings
from tests.fixtures.slapd import (
    GROUPS,
    PEOPLE,
    READER_DN,
    READER_PASSWORD,
    SlapdServer,
    password_of,
    start_slapd,
)

INJECTIONS = ["*", "*)(uid=*", "alice)(|(uid=*", "admin)(|(uid=*", "*)(|(objectClass=*", "alice*", "al*ce", "\\2a"]


def settings_for(server: SlapdServer, **method: Any) -> Settings:
    entry = {"type": "ldap", "server_address": "127.0.0.1", "server_port": server.port, "timeout": 2, **method}
    return Settings(images=[{"name": "lab", "image": "example/lab"}], auth={"methods": [entry]})  # type: ignore[arg-type, list-item]


def backend_for(server: SlapdServer, **method: Any) -> LDAPAuthenticator:
    settings = settings_for(server, **method)
    backend = LoginMethods(settings, None).primary  # type: ignore[arg-type]  # LDAP needs no database
    assert isinstance(backend, LDAPAuthenticator)
    return backend


def direct(server: SlapdServer, **method: Any) -> LDAPAuthenticator:
    """Direct bind over StartTLS, groups by memberOf."""
    return backend_for(
        server, bind_dn_template=[f"uid={{username}},{PEOPLE}"], ca_file=server.ca_file, use_member_of=True, **method
    )


def search_then_bind(server: SlapdServer, **method: Any) -> LDAPAuthenticator:
    """A service account finds the user; groups by a group search."""
    options: dict[str, Any] = {
        "lookup_dn": True,
        "lookup_dn_search_user": READER_DN,
        "lookup_dn_search_password": READER_PASSWORD,
        "user_search_base": PEOPLE,
        "group_search_base": GROUPS,
        "ca_file": server.ca_file,
    }
    return backend_for(server, **{**options, **method})


def check(backend: LDAPAuthenticator, name: str, password: str) -> Identity | None:
    return asyncio.run(backend.check_password(name, password))


@pytest.fixture(params=["direct", "search"])
def backend(request: pytest.FixtureRequest, slapd: SlapdServer) -> LDAPAuthenticator:
    return direct(slapd) if request.param == "direct" else search_then_bind(slapd)


def test_a_user_logs_in_with_the_groups_of_the_directory(backend: LDAPAuthenticator) -> None:
    assert check(backend, "alice", password_of("alice")) == Identity("alice", groups=frozenset({"researchers"}))
    bob = check(backend, "bob", password_of("bob"))
    assert bob is not None and bob.groups == {"researchers", "hub-admins"}
    carol = check(backend, "carol", password_of("carol"))
    assert carol is not None and carol.groups == frozenset()


def test_wrong_unknown_and_empty_passwords_are_refused(backend: LDAPAuthenticator) -> None:
    assert check(backend, "alice", password_of("alice") + "x") is None
    assert check(backend, "alice", password_of("bob")) is None
    assert check(backend, "nobody", password_of("alice")) is None
    # an empty password would be an anonymous bind, which the directory accepts
    assert check(backend, "alice", "") is None


@pytest.mark.parametrize("name", INJECTIONS)
def test_filter_and_dn_injections_log_nobody_in(backend: LDAPAuthenticator, name: str) -> None:
    for password in (password_of("alice"), password_of("bob"), "x"):
        assert check(backend, name, password) is None


def test_dn_special_characters_are_escaped_not_interpreted(backend: LDAPAuthenticator) -> None:
    # the entry uid=smith\2C j exists; its name reaches the DN and the filter escaped, and matches it exactly
    assert check(backend, "smith, j", password_of("smith, j")) == Identity(
        "smith, j", groups=frozenset({"researchers"})
    )
    for name in ("smith", "smith, j,ou=people", "alice,ou=people", "alice+cn=x", "bob\\", "bob=", "alice\x00"):
        assert check(backend, name, password_of("alice")) is None
        assert check(backend, name, password_of("bob")) is None


def test_policy_maps_directory_groups_to_allowed_and_admin(slapd: SlapdServer) -> None:
    backend = direct(slapd, allowed_groups=["researchers"], admin_groups=["hub-admins"])
    policy = AccessPolicy(frozenset(), frozenset())
    alice = check(backend, "alice", password_of("alice"))
    bob = check(backend, "bob", password_of("bob"))
    carol = check(backend, "carol", password_of("carol"))
    assert alice and bob and carol
    assert policy.admit(alice, backend.method).admin is False
    assert policy.admit(bob, backend.method).admin is True
    with pytest.raises(LoginRefused, match="not in a group that may use this hub"):
        policy.admit(carol, backend.method)


def test_ldaps_with_the_ca_and_the_insecure_mode(slapd: SlapdServer) -> None:
    ldaps = direct(slapd, use_ssl=True, server_port=slapd.ldaps_port)
    assert check(ldaps, "alice", password_of("alice")) is not None
    plain = direct(slapd, tls_strategy="insecure")
    assert any("unencrypted" in warning for warning in plain.startup_warnings())
    assert check(plain, "alice", password_of("alice")) is not None


def test_a_certificate_from_another_ca_is_refused(slapd: SlapdServer, tmp_path: Path) -> None:
    other = start_slapd(tmp_path / "other")
    other.stop()
    # the system's CAs (no ca_file), or a CA file that exists but is not this server's; StartTLS, then LDAPS
    for ca_file in (None, other.ca_file):
        for options in ({}, {"use_ssl": True, "server_port": slapd.ldaps_port}):
            backend = backend_for(slapd, bind_dn_template=f"uid={{username}},{PEOPLE}", ca_file=ca_file, **options)
            with pytest.raises(AuthUnavailable, match="CERTIFICATE_VERIFY_FAILED") as caught:
                check(backend, "alice", password_of("alice"))
            assert "cannot be reached" in caught.value.user_message


def test_a_wrong_service_password_is_the_hubs_problem_not_the_users(slapd: SlapdServer) -> None:
    backend = search_then_bind(slapd, lookup_dn_search_password="wrong")
    with pytest.raises(AuthUnavailable, match="search account"):
        check(backend, "alice", password_of("alice"))


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[SlapdServer]:
    """A directory this test may stop or freeze."""
    server = start_slapd(tmp_path / "slapd")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def test_a_stopped_directory_gives_a_clear_message_at_once_and_recovers(own_slapd: SlapdServer) -> None:
    backend = search_then_bind(own_slapd)
    assert check(backend, "alice", password_of("alice")) is not None
    own_slapd.stop()
    started = time.monotonic()
    with pytest.raises(AuthUnavailable) as caught:
        check(backend, "alice", password_of("alice"))
    assert time.monotonic() - started < 2
    assert "The directory cannot be reached right now" in caught.value.user_message
    own_slapd.start()
    assert check(backend, "alice", password_of("alice")) is not None


@pytest.mark.parametrize("kind", ["direct", "search"])
def test_a_hanging_directory_gives_up_after_the_timeout(own_slapd: SlapdServer, kind: str) -> None:
    backend = direct(own_slapd, timeout=1) if kind == "direct" else search_then_bind(own_slapd, timeout=1)
    own_slapd.pause()
    try:
        started = time.monotonic()
        with pytest.raises(AuthUnavailable) as caught:
            check(backend, "bob", password_of("bob"))
        assert time.monotonic() - started < 4
        assert "cannot be reached" in caught.value.user_message
    finally:
        own_slapd.resume()
    assert check(backend, "bob", password_of("bob")) is not None


def test_without_a_group_source_the_groups_are_left_alone(slapd: SlapdServer) -> None:
    backend = backend_for(slapd, bind_dn_template=f"uid={{username}},{PEOPLE}", ca_file=slapd.ca_file)
    assert check(backend, "alice", password_of("alice")) == Identity("alice", groups=None)


def test_a_search_by_mail_names_the_account_by_the_directorys_user_name(slapd: SlapdServer) -> None:
    backend = search_then_bind(slapd, lookup_dn_search_filter="(|({login_attr}={login})(mail={login}))")
    by_mail = check(backend, "alice@example.org", password_of("alice"))
    assert by_mail is not None and by_mail.username == "alice"  # one person, one account
    assert check(backend, "alice", password_of("alice")) == by_mail


def test_a_group_of_the_same_name_elsewhere_in_the_tree_does_not_count(slapd: SlapdServer) -> None:
    import ldap3

    from tests.fixtures.slapd import BASE_DN, ROOT_DN, ROOT_PASSWORD

    elsewhere = f"ou=delegated,{BASE_DN}"
    rogue = f"cn=hub-admins,{elsewhere}"
    root = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.port), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
    assert root.add(elsewhere, ["organizationalUnit"], {"ou": "delegated"}), root.result
    assert root.add(rogue, ["groupOfNames"], {"cn": "hub-admins", "member": [f"uid=alice,{PEOPLE}"]}), root.result
    try:
        unscoped = check(direct(slapd), "alice", password_of("alice"))
        assert unscoped is not None and "hub-admins" in (unscoped.groups or ())  # memberOf lists the rogue group
        scoped = check(direct(slapd, group_search_base=GROUPS), "alice", password_of("alice"))
        assert scoped is not None and scoped.groups == frozenset({"researchers"})
    finally:
        root.delete(rogue)
        root.delete(elsewhere)
        root.unbind()
