"""LDAP and Active Directory: bind as the user, then read the user's groups.

The user's DN comes from a template (direct bind) or from a search made with a service account
(search-then-bind). A name goes into a DN only through ``escape_rdn`` and into a filter only through
``escape_filter_chars``, so a name such as ``*)(uid=*`` matches nobody. An empty password is refused before
anything is sent (a simple bind without a password is an anonymous bind, which many directories accept).

ldap3 blocks, so each check runs in a small pool of this module's own: a directory that hangs holds up
LDAP logins only, never the other login methods. Every connection has connect and receive timeouts.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from hub.auth import Authenticator, AuthUnavailable, Identity, PasswordAuthenticator
from hub.auth.pool import AuthPool
from hub.config import Settings
from hub.db import Sessionmaker
from hub.i18n import N_
from hub.ldap_config import LDAPMethod
from hub.names import truncate

log = logging.getLogger(__name__)

UNREACHABLE = N_(
    "The directory cannot be reached right now, so logging in is not possible. Please try again in a minute."
)
MISBEHAVING = N_("The directory did not answer as expected. Please try again later, or tell the hub's administrator.")
BUSY_RESULTS = frozenset({51, 52, 80})
"""busy, unavailable, other: the directory cannot answer (49, invalid credentials, is a plain refusal)."""
_ESCAPED = re.compile(r"\\([0-9A-Fa-f]{2}|.)", re.DOTALL)

ldap_pool = AuthPool(workers=4)
"""Threads for the blocking ldap3 calls (separate from auth_pool: see the module's docstring)."""


def user_dn(template: str, username: str) -> str:
    """A DN template filled with the name, escaped as an attribute value (``,`` ``+`` ``=`` ``\\`` ...)."""
    return template.format(username=escape_rdn(username))


def user_filter(template: str, attribute: str, username: str) -> str:
    """The search for a user, with the name escaped for a filter (``*`` ``(`` ``)`` ``\\`` NUL)."""
    return template.format(login_attr=attribute, login=escape_filter_chars(username))


def group_filter(template: str, dn: str, username: str) -> str:
    return template.format(userdn=escape_filter_chars(dn), username=escape_filter_chars(username))


def unescape_value(value: str) -> str:
    """An attribute value as written in a DN (``\\,`` or ``\\2C``), in plain text."""
    out = bytearray()
    position = 0
    for match in _ESCAPED.finditer(value):
        out += value[position : match.start()].encode()
        escaped = match.group(1)
        out += bytes.fromhex(escaped) if len(escaped) == 2 else escaped.encode()
        position = match.end()
    out += value[position:].encode()
    return out.decode("utf-8", errors="replace")


def dn_parts(dn: str) -> list[tuple[str, str]]:
    return [(attribute.lower(), unescape_value(value).lower()) for attribute, value, _ in parse_dn(dn)]


def under(dn: str, base: str) -> bool:
    """Whether the entry ``dn`` lies under ``base`` (compared part by part, case-insensitively)."""
    try:
        entry, parent = dn_parts(dn), dn_parts(base)
    except LDAPException:
        return False
    return len(entry) > len(parent) and entry[len(entry) - len(parent) :] == parent


def group_name(dn: str) -> str:
    """A group's name from its DN: the value of its first RDN (``cn=hub-admins,ou=groups,...`` -> hub-admins)."""
    return unescape_value(parse_dn(dn)[0][1])


class LDAPAuthenticator(PasswordAuthenticator):
    name = "ldap"

    def __init__(self, method: LDAPMethod, settings: Settings, sessions: Sessionmaker) -> None:
        super().__init__(method, settings, sessions)
        self.config = method

    def _server(self) -> ldap3.Server:
        """A new server object for each login: ldap3 remembers an address that failed once as unavailable."""
        config = self.config
        tls = None
        if config.ldaps or config.start_tls:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file, sni=config.server_address)
        return ldap3.Server(
            config.server_address,
            port=config.port,
            use_ssl=config.ldaps,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=config.timeout,
        )

    @property
    def where(self) -> str:
        scheme = "ldaps" if self.config.ldaps else "ldap"
        return f"{scheme}://{self.config.server_address}:{self.config.port}"

    def startup_warnings(self) -> list[str]:
        if self.config.tls_strategy == "insecure" and not self.config.ldaps:
            return [
                f"auth.methods {self.config.name}: passwords go to {self.where} unencrypted (tls_strategy insecure)"
            ]
        return []

    async def check_password(self, username: str, password: str) -> Identity | None:
        if not password:
            return None
        return await ldap_pool.run(self._check, username, password)

    def _check(self, username: str, password: str) -> Identity | None:
        try:
            return self._login(username, password)
        except LDAPException as exc:
            raise AuthUnavailable(f"LDAP {self.where}: {type(exc).__name__}: {exc}", UNREACHABLE) from exc

    @contextmanager
    def _connection(self, server: ldap3.Server, dn: str | None, password: str | None) -> Iterator[ldap3.Connection]:
        """An open connection (TLS started if configured), not yet bound; closed on leaving."""
        connection = ldap3.Connection(
            server,
            user=dn,
            password=password,
            authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS,
            receive_timeout=self.config.timeout,
            read_only=True,
            raise_exceptions=False,
            auto_referrals=False,  # following one would send the password to a server not in the settings
        )
        try:
            connection.open()
            if self.config.start_tls:
                connection.start_tls()
            yield connection
        finally:
            try:
                connection.unbind()
            except LDAPException:
                pass

    def _bind(self, connection: ldap3.Connection, who: str) -> bool:
        if connection.bind():
            return True
        result = connection.result or {}
        if result.get("result") in BUSY_RESULTS:
            raise AuthUnavailable(f"LDAP {self.where}: bind as {who}: {result.get('description')}", UNREACHABLE)
        log.info("LDAP bind as %s refused: %s", truncate(who), result.get("description"))
        return False

    def _login(self, username: str, password: str) -> Identity | None:
        config = self.config
        server = self._server()
        if not config.lookup_dn:
            for template in config.bind_dn_template:
                dn = user_dn(template, username)
                with self._connection(server, dn, password) as connection:
                    if self._bind(connection, dn):
                        return Identity(username, groups=self._groups(connection, dn, username))
            return None
        search_password = config.lookup_dn_search_password
        service_dn = config.lookup_dn_search_user
        with self._connection(
            server, service_dn, search_password.get_secret_value() if search_password else None
        ) as service:
            if not self._bind(service, service_dn or "anonymous"):
                raise AuthUnavailable(f"LDAP {self.where}: the search account {service_dn} cannot bind", MISBEHAVING)
            match = self._find_user(service, username)
            if match is None:
                return None
            found, directory_name = match
            with self._connection(server, found, password) as connection:
                if not self._bind(connection, found):
                    return None
            # The account is named by the directory's value, not by what was typed: with a filter that also
            # matches mail, "alice@uni" and "alice" are one person, and a mail set to someone else's uid is not them.
            return Identity(directory_name or username, groups=self._groups(service, found, username))

    def _search(
        self, connection: ldap3.Connection, base: str, query: str, attributes: list[str], **options: Any
    ) -> list[dict[str, Any]]:
        """The entries found; AuthUnavailable when the directory refuses the search."""
        connection.search(base, query, attributes=attributes, **options)
        result = connection.result or {}
        if result.get("result") not in (0, 4, 32):  # success, size limit exceeded, no such object
            detail = f"LDAP {self.where}: search {query} under {base}: {result.get('description')}"
            raise AuthUnavailable(detail, MISBEHAVING)
        return [entry for entry in connection.response or [] if entry.get("type") == "searchResEntry"]

    def _find_user(self, service: ldap3.Connection, username: str) -> tuple[str, str] | None:
        """The user's DN and their name as the directory holds it (``user_attribute``)."""
        config = self.config
        assert config.user_search_base is not None
        query = user_filter(config.lookup_dn_search_filter, config.user_attribute, username)
        entries = self._search(service, config.user_search_base, query, [config.user_attribute], size_limit=2)
        if len(entries) != 1:
            log.info("LDAP: %d entries for %s under %s", len(entries), truncate(username), config.user_search_base)
            return None
        value = entries[0].get("attributes", {}).get(config.user_attribute)
        if isinstance(value, list):
            value = value[0] if value else None
        return str(entries[0]["dn"]), str(value or "")

    def _groups(self, connection: ldap3.Connection, dn: str, username: str) -> frozenset[str] | None:
        config = self.config
        if config.use_member_of:
            entries = self._search(connection, dn, "(objectClass=*)", ["memberOf"], search_scope=ldap3.BASE)
            values = entries[0]["attributes"].get("memberOf", []) if entries else []
            if config.group_search_base:  # a group of that name elsewhere in the tree (a delegated OU) counts not
                values = [value for value in values if under(value, config.group_search_base)]
            return frozenset(group_name(value) for value in values)
        if config.group_search_base:
            query = group_filter(config.group_search_filter, dn, username)
            attribute = config.group_name_attribute
            names: set[str] = set()
            for entry in self._search(connection, config.group_search_base, query, [attribute]):
                value = entry["attributes"].get(attribute)
                if isinstance(value, list):
                    value = value[0] if value else None
                names.add(str(value) if value else group_name(entry["dn"]))
            return frozenset(names)
        return None


AUTHENTICATORS: dict[str, type[Authenticator]] = {"ldap": LDAPAuthenticator}
