"""LDAP settings and the escaping of names (no directory needed; tests/integration/test_ldap.py uses a real one)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from hub.auth.ldap import LDAPAuthenticator, group_filter, group_name, unescape_value, user_dn, user_filter
from hub.config import Settings
from hub.ldap_config import LDAPMethod

TEMPLATE = "uid={username},ou=people,dc=example,dc=org"


def method(**options: Any) -> LDAPMethod:
    return LDAPMethod(server_address="ldap.example.org", **options)


def settings(**options: Any) -> Settings:
    entry = {"type": "ldap", "server_address": "ldap.example.org", **options}
    return Settings(images=[{"name": "lab", "image": "example/lab"}], auth={"methods": [entry]})  # type: ignore[arg-type, list-item]


@pytest.mark.parametrize(
    ("name", "dn"),
    [
        ("alice", "uid=alice,ou=people,dc=example,dc=org"),
        ("smith, j", "uid=smith\\, j,ou=people,dc=example,dc=org"),
        ("a+cn=admin", "uid=a\\+cn\\=admin,ou=people,dc=example,dc=org"),
        ("back\\slash", "uid=back\\\\slash,ou=people,dc=example,dc=org"),
        ("*)(uid=*", "uid=*)(uid\\=*,ou=people,dc=example,dc=org"),
        ("#x", "uid=\\#x,ou=people,dc=example,dc=org"),
        ('q"<>;', 'uid=q\\"\\<\\>\\;,ou=people,dc=example,dc=org'),
    ],
)
def test_names_in_a_dn_are_escaped(name: str, dn: str) -> None:
    assert user_dn(TEMPLATE, name) == dn


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("alice", "(uid=alice)"),
        ("*", "(uid=\\2a)"),
        ("*)(uid=*", "(uid=\\2a\\29\\28uid=\\2a)"),
        ("admin)(|(uid=*", "(uid=admin\\29\\28|\\28uid=\\2a)"),
        ("a\\b", "(uid=a\\5cb)"),
        ("nul\x00", "(uid=nul\\00)"),
    ],
)
def test_names_in_a_filter_are_escaped(name: str, query: str) -> None:
    assert user_filter("({login_attr}={login})", "uid", name) == query


def test_the_group_filter_escapes_the_dn_and_the_name() -> None:
    query = group_filter("(|(member={userdn})(memberUid={username}))", "uid=a\\2a,dc=x", "a*")
    assert query == "(|(member=uid=a\\5c2a,dc=x)(memberUid=a\\2a))"


def test_group_names_come_from_the_first_rdn() -> None:
    assert group_name("cn=hub-admins,ou=groups,dc=example,dc=org") == "hub-admins"
    assert group_name("CN=Domain Admins,CN=Users,DC=corp,DC=example") == "Domain Admins"
    assert group_name("cn=R\\26D\\2C Lab,ou=groups,dc=x") == "R&D, Lab"
    assert group_name("cn=a\\,b,dc=x") == "a,b"
    assert unescape_value("caf\\C3\\A9") == "café"


def test_ports_and_tls_follow_the_strategy() -> None:
    assert (method().port, method().start_tls, method().ldaps) == (389, True, False)
    assert (method(use_ssl=True).port, method(use_ssl=True).start_tls) == (636, False)
    assert method(tls_strategy="on_connect").ldaps
    insecure = method(tls_strategy="insecure", server_port=10389)
    assert (insecure.port, insecure.start_tls, insecure.ldaps) == (10389, False, False)


def test_one_template_may_be_given_as_a_string() -> None:
    assert method(bind_dn_template=TEMPLATE).bind_dn_template == [TEMPLATE]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set bind_dn_template"),
        ({"bind_dn_template": "uid=alice,dc=x"}, "has no {username}"),
        ({"lookup_dn": True}, "lookup_dn needs user_search_base"),
        (
            {"lookup_dn": True, "user_search_base": "dc=x", "lookup_dn_search_user": "cn=r,dc=x"},
            "needs lookup_dn_search_password",
        ),
        ({"bind_dn_template": TEMPLATE, "allowed_groups": ["staff"]}, "need use_member_of or group_search_base"),
        ({"bind_dn_template": TEMPLATE, "use_member_of": True, "admin_groups": ["cn=a,dc=x"]}, "looks like a DN"),
        ({"bind_dn_template": TEMPLATE, "ca_file": "/nonexistent/ca.pem"}, "does not exist"),
        ({"bind_dn_template": TEMPLATE, "timeout": 0}, "timeout"),
    ],
)
def test_settings_that_cannot_work_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**options)
    assert message in str(caught.value)


def test_good_settings_pass() -> None:
    settings(bind_dn_template=TEMPLATE, use_member_of=True, allowed_groups=["staff"], admin_groups=["admins"])
    settings(lookup_dn=True, user_search_base="dc=x", group_search_base="ou=groups,dc=x", allowed_groups=["a"])


def test_an_empty_password_is_refused_before_anything_is_sent() -> None:
    hub = settings(bind_dn_template=TEMPLATE, server_port=9, tls_strategy="insecure")  # nothing listens on port 9
    backend = LDAPAuthenticator(hub.auth.primary, hub, None)  # type: ignore[arg-type]
    assert asyncio.run(backend.check_password("alice", "")) is None
