"""Configuration of LDAP and Active Directory login (key names as JupyterHub's LDAPAuthenticator)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from hub.auth_config import MethodBase

LDAP_PORT = 389
LDAPS_PORT = 636


class LDAPMethod(MethodBase):
    """Users of an LDAP directory (OpenLDAP, Active Directory, ...), checked by binding with their password.

    Either direct bind (``bind_dn_template``) or search-then-bind (``lookup_dn`` with a service account).
    Groups come from the user's ``memberOf`` (``use_member_of``) or from a search under ``group_search_base``;
    ``allowed_groups`` and ``admin_groups`` name groups by their name (cn), not by DN.
    """

    type: Literal["ldap"] = "ldap"
    server_address: str = Field(min_length=1)
    """Host name or address of the directory server."""
    server_port: int | None = Field(None, ge=1, le=65535)
    """Default 636 with LDAPS, else 389."""
    use_ssl: bool = False
    """LDAPS (TLS from the first byte); the same as tls_strategy: on_connect."""
    tls_strategy: Literal["before_bind", "on_connect", "insecure"] = "before_bind"
    """before_bind: StartTLS before anything is sent; on_connect: LDAPS; insecure: plain text (tests only)."""
    ca_file: str | None = None
    """PEM file with the CA(s) that signed the server's certificate; default: the system's CAs.
    The certificate must name server_address (as a host name or an IP address)."""
    bind_dn_template: list[str] = []
    """Direct bind: DN templates with {username}, e.g. uid={username},ou=people,dc=example,dc=org
    (tried in order); for Active Directory also {username}@example.org."""
    lookup_dn: bool = False
    """Search-then-bind: find the user's DN with the service account, then bind as the user."""
    lookup_dn_search_user: str | None = None
    """DN of the service account that searches (none: an anonymous search)."""
    lookup_dn_search_password: SecretStr | None = None
    lookup_dn_search_filter: str = "({login_attr}={login})"
    """The search for the user: {login_attr} is user_attribute, {login} the (escaped) name typed."""
    user_search_base: str | None = None
    """Where users are searched, e.g. ou=people,dc=example,dc=org."""
    user_attribute: str = "uid"
    """The attribute that holds the user name (sAMAccountName for Active Directory)."""
    use_member_of: bool = False
    """Read groups from the user's memberOf attribute (Active Directory; OpenLDAP's memberof overlay)."""
    group_search_base: str | None = None
    """Search groups here (when use_member_of is off), e.g. ou=groups,dc=example,dc=org."""
    group_search_filter: str = "(|(member={userdn})(uniqueMember={userdn})(memberUid={username}))"
    """{userdn} is the user's DN, {username} the name typed (both escaped)."""
    group_name_attribute: str = "cn"
    """The group's name, as allowed_groups and admin_groups give it."""
    timeout: int = Field(5, ge=1, le=300)
    """Whole seconds for connecting and for each answer: a dead directory gives a clear message, never a hang."""

    @field_validator("bind_dn_template", mode="before")
    @classmethod
    def _one_template(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def ldaps(self) -> bool:
        return self.use_ssl or self.tls_strategy == "on_connect"

    @property
    def start_tls(self) -> bool:
        return not self.ldaps and self.tls_strategy == "before_bind"

    @property
    def port(self) -> int:
        return self.server_port or (LDAPS_PORT if self.ldaps else LDAP_PORT)

    @property
    def reports_groups(self) -> bool:
        return self.use_member_of or bool(self.group_search_base)

    def startup_problems(self) -> list[str]:
        where = f"auth.methods {self.name}"
        problems: list[str] = []
        if self.lookup_dn:
            if not self.user_search_base:
                problems.append(f"{where}: lookup_dn needs user_search_base (where to search for users)")
            if self.lookup_dn_search_user and self.lookup_dn_search_password is None:
                problems.append(f"{where}: lookup_dn_search_user needs lookup_dn_search_password")
        elif not self.bind_dn_template:
            problems.append(f"{where}: set bind_dn_template (direct bind) or lookup_dn (search, then bind)")
        problems += [
            f"{where}: bind_dn_template {template!r} has no {{username}}"
            for template in self.bind_dn_template
            if "{username}" not in template
        ]
        if (self.allowed_groups or self.admin_groups) and not self.reports_groups:
            problems.append(f"{where}: allowed_groups and admin_groups need use_member_of or group_search_base")
        problems += [
            f"{where}: {group!r} looks like a DN; allowed_groups and admin_groups take group names (the cn)"
            for group in [*self.allowed_groups, *self.admin_groups]
            if "=" in group
        ]
        if self.ca_file and not Path(self.ca_file).is_file():
            problems.append(f"{where}: ca_file {self.ca_file} does not exist")
        return problems
