"""Actions on many users at once (the admin panel's check boxes, or a group): start, stop, delete servers.

Each action calls the server manager exactly as the single-user buttons do, one user after another for
starts (a start returns at once; the spawn queue decides when it runs) and a few at a time for stops. One
user's failure does not hold up the others: the outcome names who was done, skipped and failed, and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from hub.accounts import AccountService
from hub.config import ImageSpec
from hub.errors import BadRequest, HubError
from hub.groups import GroupService
from hub.i18n import L_, N_, Text, joined
from hub.names import normalize_username, truncate
from hub.servers import ServerManager
from hub.users import ACTIVE_STATES, ServerRow, UserDirectory, UserRow

log = logging.getLogger(__name__)
ACTIONS = ("start", "stop", "delete", "export")
STOPS_AT_ONCE = 8
MAX_NAMED = 8
"""Names listed in a message before "and N more"."""


@dataclass
class BulkOutcome:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Nothing to do for them (already running, nothing running)."""
    failed: list[tuple[str, str]] = field(default_factory=list)

    def message(self, did: str, skipped: str = N_("Nothing to do for %(names)s."), **names: object) -> Text:
        """``did`` and ``skipped``: messages marked with N_() where ``%(names)s`` lists the users; ``names`` fill
        in the other placeholders of ``did``."""
        parts: list[str] = [
            Text(did, names={**names, "names": listed(self.done)}) if self.done else N_("No server was changed.")
        ]
        if self.skipped:
            parts.append(Text(skipped, names={"names": listed(self.skipped)}))
        parts += [L_("%(name)s: %(reason)s", name=name, reason=reason) for name, reason in self.failed[:MAX_NAMED]]
        if len(self.failed) > MAX_NAMED:  # the message travels in the session cookie: keep it short
            more = len(self.failed) - MAX_NAMED
            parts.append(L_("And %(count)d more failed (the hub's log names them).", count=more))
        return joined(parts)


def listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return (
        L_("%(names)s and %(count)d more", names=shown, count=len(names) - MAX_NAMED)
        if len(names) > MAX_NAMED
        else shown
    )


@dataclass(frozen=True, slots=True)
class Affected:
    """Who a stop or a deletion touches, and which of their servers, for the confirmation page."""

    servers: list[tuple[str, list[str]]]
    untouched: list[str]


async def select_users(
    accounts: AccountService, groups: GroupService, names: Iterable[str], group: str = ""
) -> list[str]:
    """The users chosen with check boxes, plus every member of ``group``; an unknown user or group is a 400."""
    chosen = list(dict.fromkeys(normalize_username(name) for name in names if name.strip()))
    unknown = [name for name in chosen if accounts.get(name) is None]
    if unknown:
        raise BadRequest(L_("There is no user %(name)s.", name=truncate(unknown[0])))
    if group:
        chosen += [name for name in (await groups.get(group)).users if name not in chosen]
    if not chosen:
        raise BadRequest(N_("Choose users with the check boxes, or a group with members."))
    return chosen


def is_active(row: UserRow, server: ServerRow, spawning: Callable[[str, str], bool]) -> bool:
    return server.state in ACTIVE_STATES or spawning(row.name, server.name)


def touched(row: UserRow, action: str, spawning: Callable[[str, str], bool]) -> list[tuple[str, str]]:
    """(server name, what the page says about it) for each server of the user the action stops or deletes."""
    found: list[tuple[str, str]] = []
    for server in (row.default_server, *row.named):
        label = f"server {server.name}" if server.name else "default server"
        if is_active(row, server, spawning):
            found.append((server.name, f"{label} ({server.state.value})"))
        elif action == "delete" and server.name:
            found.append((server.name, f"{label} ({server.state.value})"))
    return found


def affected(rows: list[UserRow], action: str, spawning: Callable[[str, str], bool]) -> Affected:
    servers: list[tuple[str, list[str]]] = []
    untouched: list[str] = []
    for row in rows:
        found = touched(row, action, spawning)
        if found:
            servers.append((row.name, [label for _, label in found]))
        else:
            untouched.append(row.name)
    return Affected(servers, untouched)


async def start_all(servers: ServerManager, users: UserDirectory, names: list[str], image: ImageSpec) -> BulkOutcome:
    """Start the default server of each user whose server is not running; each goes through the spawn queue."""
    outcome = BulkOutcome()
    for name in names:
        row = await users.row(name)
        if is_active(row, row.default_server, servers.is_spawning):
            outcome.skipped.append(name)
            continue
        try:
            await servers.start(name, image, admin=True)  # the image's default resources, as the panel's Start
        except HubError as exc:
            outcome.failed.append((name, exc.user_message))
            log.warning("bulk start for %s failed: %s", name, exc.detail)
        else:
            outcome.done.append(name)
    return outcome


async def each_user(
    users: UserDirectory,
    names: list[str],
    action: str,
    spawning: Callable[[str, str], bool],
    act: Callable[[str, str], Awaitable[None]],
) -> BulkOutcome:
    """Run ``act(name, server)`` for every server the action touches, a few users at a time."""
    outcome = BulkOutcome()
    limit = asyncio.Semaphore(STOPS_AT_ONCE)

    async def one(name: str) -> None:
        async with limit:
            found = touched(await users.row(name), action, spawning)
            if not found:
                outcome.skipped.append(name)
                return
            try:
                for server, _ in found:
                    await act(name, server)
            except HubError as exc:
                outcome.failed.append((name, exc.user_message))
                log.warning("bulk %s for %s failed: %s", action, name, exc.detail)
            else:
                outcome.done.append(name)

    await asyncio.gather(*(one(name) for name in names))
    order = {name: index for index, name in enumerate(names)}
    outcome.done.sort(key=order.__getitem__)
    outcome.skipped.sort(key=order.__getitem__)
    return outcome


async def stop_servers(servers: ServerManager, users: UserDirectory, names: list[str]) -> BulkOutcome:
    """Stop every running server (default and named) of the users; their files are kept."""

    async def stop(name: str, server: str) -> None:
        await servers.stop(name, server=server)

    return await each_user(users, names, "stop", servers.is_spawning, stop)


async def delete_servers(servers: ServerManager, users: UserDirectory, names: list[str]) -> BulkOutcome:
    """JupyterHub's DELETE of servers: the default server is stopped (its container removed), named servers are
    stopped and forgotten (their names free again). Accounts and files are kept."""

    async def delete(name: str, server: str) -> None:
        if server:
            await servers.delete_server(name, server)
        else:
            await servers.stop(name)

    return await each_user(users, names, "delete", servers.is_spawning, delete)
