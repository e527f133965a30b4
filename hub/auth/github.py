"""GitHub login (OAuth 2, not OpenID Connect): the user name is the GitHub login.

Organisations and teams the user belongs to are reported as groups named ``org`` and
``org:team`` (the team's slug), so ``allowed_organizations``, ``allowed_groups`` and
``admin_groups`` all speak of the same names. Only the memberships the configuration names are
asked about, unless the hub manages groups or has admin_groups: then the user's organisations and
teams are read (the token needs the ``read:org`` scope), and only those of organisations the
configuration names become groups (anybody can create a GitHub organisation called ``admins``).
The account is bound to the numeric GitHub user id, which stays when a login is renamed or reused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from hub.auth import Authenticator, Identity, LoginRefused
from hub.auth.oauth2 import OAuth2Authenticator, token_state
from hub.i18n import N_
from hub.names import truncate
from hub.oauth_config import GitHubMethod

log = logging.getLogger(__name__)
MAX_PAGES = 10


class GitHubAuthenticator(OAuth2Authenticator):
    name: ClassVar[str] = "github"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self.method, GitHubMethod)
        self.github: GitHubMethod = self.method

    async def authorize_endpoint(self) -> str:
        return f"{self.github.github_url.rstrip('/')}/login/oauth/authorize"

    async def token_endpoint(self) -> str:
        return f"{self.github.github_url.rstrip('/')}/login/oauth/access_token"

    async def api(self, path: str, token: str) -> tuple[int, Any]:
        url = f"{self.github.api_url.rstrip('/')}{path}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
        return await self.fetch_json("GET", url, headers=headers, allow_redirects=False)

    async def listing(self, path: str, token: str) -> list[dict[str, Any]]:
        """All pages of a list the API returns (100 a page)."""
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            status, body = await self.api(f"{path}?per_page=100&page={page}", token)
            if status != 200 or not isinstance(body, list):
                log.warning("%s: GitHub answered %s for %s", self.method.name, status, path)
                break
            items.extend(item for item in body if isinstance(item, dict))
            if len(body) < 100:
                break
        return items

    def startup_warnings(self) -> list[str]:
        warnings = []
        if self.github.manage_groups and not self.github.group_organizations():
            warnings.append(
                f"login method {self.method.name}: manage_groups makes no groups: name the organisations whose "
                "teams become groups in allowed_organizations, allowed_groups or admin_groups"
            )
        return warnings

    async def all_groups(self, token: str) -> set[str]:
        """The user's organisations and teams, of the organisations the configuration names only."""
        known = self.github.group_organizations()
        if not known:
            return set()
        groups = {str(org.get("login", "")).lower() for org in await self.listing("/user/orgs", token)}
        for team in await self.listing("/user/teams", token):
            org = team.get("organization")
            org = org if isinstance(org, dict) else {}
            groups.add(f"{str(org.get('login', '')).lower()}:{str(team.get('slug', '')).lower()}")
        return {group for group in groups if group.partition(":")[0] in known}

    async def member_of(self, entry: str, login: str, token: str) -> bool:
        """Whether ``login`` is in the organisation ``org`` or the team ``org:team``."""
        org, _, team = entry.partition(":")
        if team:
            path = f"/orgs/{quote(org, safe='')}/teams/{quote(team, safe='')}/memberships/{quote(login, safe='')}"
            status, body = await self.api(path, token)
            return status == 200 and isinstance(body, dict) and body.get("state") == "active"
        status, _ = await self.api(f"/orgs/{quote(org, safe='')}/members/{quote(login, safe='')}", token)
        return status == 204

    async def groups(self, login: str, token: str) -> frozenset[str] | None:
        method = self.github
        if method.manage_groups or method.admin_groups:
            return frozenset(await self.all_groups(token))
        if not method.allowed_organizations:
            return None
        found = {entry.lower() for entry in method.allowed_organizations if await self.member_of(entry, login, token)}
        return frozenset(found)

    async def complete(self, params: Mapping[str, str], kept: Mapping[str, str], callback_url: str) -> Identity:
        code = self.code_of(params)
        tokens = await self.exchange(code, kept, callback_url)
        token = str(tokens["access_token"])
        status, user = await self.api("/user", token)
        if status != 200 or not isinstance(user, dict) or not user.get("login") or user.get("id") is None:
            log.warning("%s: GET /user answered %s", self.method.name, status)
            raise LoginRefused(
                N_("GitHub did not tell the hub who you are. Please start the login again."),
                f"{self.method.name}: GET /user answered {status}",
                status=502,
            )
        login = str(user["login"])
        groups = await self.groups(login, token)
        log.info("%s: GitHub vouches for %s (groups %s)", self.method.name, truncate(login), sorted(groups or []))
        about = {key: str(user[key]) for key in ("login", "id", "name", "email") if user.get(key) is not None}
        state = {**about, **token_state(tokens)}
        return Identity(login, groups=groups, auth_state=state, subject=str(user["id"]))


AUTHENTICATORS: dict[str, type[Authenticator]] = {"github": GitHubAuthenticator}
