"""Sharing a server, over fakes: who may open what (users, groups, expiry, revocation, share links), the
REST API in JupyterHub 5's shapes, the pages, and the WebSocket relay that closes a recipient's connections
when their access ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from hub.config import Settings
from hub.keys import ACCOUNTS, GROUPS, SERVERS, SESSIONS, SHARE_RELAYS, SHARE_TICKETS, SHARING
from hub.models import Server, ShareCode, User
from hub.share_relay import REVOKED_CLOSE_CODE, Ticket, TicketSigner
from hub.sharing import SharingService
from tests.fakes import FakeProxy
from tests.inprocess.conftest import IMAGES, TokenMaker
from tests.inprocess.test_api_rules import auth, forwarded, start
from tests.inprocess.test_groups_api import log_in

SCOPE = "access:servers!server=alice/"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The in-process hub's settings with sharing on (it is off by default)."""
    return Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
        sharing={"enabled": True},
    )


async def started(client: TestClient, tokens_of: TokenMaker, server: str = "") -> str:
    """alice's server (default or named) running; returns alice's token."""
    alice = await tokens_of("alice")
    if server:
        response = await client.post(
            f"/hub/api/users/alice/servers/{server}", json={"image": "lab"}, headers=auth(alice)
        )
        assert response.status == 201, await response.text()
    else:
        await start(client, "alice", alice)
    return alice


async def gate(client: TestClient, uri: str, token: str, path: str = "/hub/forward-auth/alice") -> int:
    return (await client.get(path, headers=forwarded(uri, token), allow_redirects=False)).status


async def test_the_owner_shares_with_bob_who_then_passes_for_that_server_only(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await started(app_client, tokens_of)
    await started(app_client, tokens_of, "x")
    bob = await tokens_of("bob")
    assert await gate(app_client, "/user/alice/tree", bob) == 403

    shared = await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    assert shared.status == 200, await shared.text()
    model = await shared.json()
    assert model["server"] == {"name": "", "user": {"name": "alice"}, "url": "/user/alice/", "ready": True}
    assert (model["scopes"], model["user"], model["group"], model["kind"]) == ([SCOPE], {"name": "bob"}, None, "user")
    assert model["created_at"].endswith("Z") and model["expires_at"] is None

    allowed = await app_client.get("/hub/forward-auth/alice", headers=forwarded("/user/alice/tree", bob))
    assert allowed.status == 200
    secret = app_client.server.app[SERVERS].route_secret("alice")
    assert allowed.headers["Authorization"] == f"token {secret}"  # the server's own token, as for alice
    assert await gate(app_client, "/user/alice/x/tree", bob, "/hub/forward-auth/alice/x") == 403  # only that server
    assert await gate(app_client, "/user/alice/../bob/", bob, "/hub/forward-auth/alice") == 403
    # WebSockets straight to the server are the owner's; a share's go to the relay, with a session only
    assert await gate(app_client, "/user/alice/api/kernels/k/channels", bob, "/hub/forward-auth-ws/alice") == 403
    assert await gate(app_client, "/user/alice/api/kernels/k/channels", alice, "/hub/forward-auth-ws/alice") == 200
    assert await gate(app_client, "/user/alice/api/kernels/k", bob, "/hub/forward-auth-share/alice") == 401

    listed = await (await app_client.get("/hub/api/shares/alice/", headers=auth(alice))).json()
    assert [item["user"] for item in listed["items"]] == [{"name": "bob"}]
    assert listed["_pagination"]["total"] == 1
    mine = await (await app_client.get("/hub/api/users/bob/shared", headers=auth(bob))).json()
    assert [item["server"]["user"]["name"] for item in mine["items"]] == ["alice"]

    revoked = await app_client.patch("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    assert (revoked.status, await revoked.json()) == (200, {})
    assert await gate(app_client, "/user/alice/tree", bob) == 403  # at the very next request


async def test_nobody_but_the_owner_grants_not_even_an_admin(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await started(app_client, tokens_of)
    bob, admin = await tokens_of("bob"), await tokens_of("admin")
    for token, who in ((bob, "bob"), (admin, "admin")):
        response = await app_client.post("/hub/api/shares/alice/", json={"user": who}, headers=auth(token))
        assert response.status == 403, who
    assert (await app_client.get("/hub/api/shares/alice/", headers=auth(bob))).status == 403
    assert (await app_client.post("/hub/api/shares/alice/", json={"user": "alice"}, headers=auth(alice))).status == 400
    both = {"user": "bob", "group": "g"}
    assert (await app_client.post("/hub/api/shares/alice/", json=both, headers=auth(alice))).status == 400
    wrong_scope = {"user": "bob", "scopes": ["admin:users"]}
    assert (await app_client.post("/hub/api/shares/alice/", json=wrong_scope, headers=auth(alice))).status == 400
    nobody = await app_client.post("/hub/api/shares/alice/", json={"user": "nobody"}, headers=auth(alice))
    assert nobody.status == 400 and "There is no user nobody" in await nobody.text()
    missing = await app_client.post("/hub/api/shares/alice/nope", json={"user": "bob"}, headers=auth(alice))
    assert missing.status == 404


async def test_admins_see_and_revoke_every_share(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await started(app_client, tokens_of)
    bob, admin = await tokens_of("bob"), await tokens_of("admin")
    await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    assert (await app_client.get("/hub/api/users/bob/shared", headers=auth(alice))).status == 403
    everything = await (await app_client.get("/hub/api/shares/alice", headers=auth(admin))).json()
    assert [item["user"]["name"] for item in everything["items"]] == ["bob"]
    csrf = await log_in(app_client, "admin")
    page = await (await app_client.get("/hub/admin/shares")).text()
    share_id = re.search(r'data-share="(\d+)"', page)
    assert share_id and "bob" in page
    revoked = await app_client.post(
        "/hub/admin/shares/revoke", data={"_xsrf": csrf, "id": share_id.group(1)}, allow_redirects=False
    )
    assert revoked.status == 303
    assert await gate(app_client, "/user/alice/", bob) == 403


async def test_a_share_until_a_date_ends_then(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await started(app_client, tokens_of)
    past = {"user": "bob", "expires_at": "2001-01-01T00:00:00Z"}
    assert (await app_client.post("/hub/api/shares/alice/", json=past, headers=auth(alice))).status == 400
    garbage = {"user": "bob", "expires_at": "next tuesday"}
    assert (await app_client.post("/hub/api/shares/alice/", json=garbage, headers=auth(alice))).status == 400
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    made = await app_client.post(
        "/hub/api/shares/alice/", json={"user": "bob", "expires_at": soon.isoformat()}, headers=auth(alice)
    )
    assert made.status == 200 and (await made.json())["expires_at"]
    sharing: SharingService = app_client.server.app[SHARING]
    assert sharing.may_use("bob", "alice")
    assert not sharing.may_use("bob", "alice", now=soon + dt.timedelta(seconds=1))
    until_day = await app_client.post(
        "/hub/api/shares/alice/", json={"user": "bob", "expires_at": "2999-12-31"}, headers=auth(alice)
    )
    assert (await until_day.json())["expires_at"] == "3000-01-01T00:00:00Z"  # through that whole day


async def test_a_group_share_follows_membership_at_once(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice, bob = await started(app_client, tokens_of), await tokens_of("bob")
    groups = app_client.server.app[GROUPS]
    await groups.create(["physics"], ["bob"])
    made = await app_client.post("/hub/api/shares/alice/", json={"group": "physics"}, headers=auth(alice))
    assert (await made.json())["group"] == {"name": "physics"} and (await made.json())["kind"] == "group"
    assert await gate(app_client, "/user/alice/", bob) == 200
    shared = await (await app_client.get("/hub/api/users/bob/shared", headers=auth(bob))).json()
    assert [item["group"] for item in shared["items"]] == [{"name": "physics"}]
    await groups.remove_users("physics", ["bob"])
    assert await gate(app_client, "/user/alice/", bob) == 403
    await groups.add_users("physics", ["bob"])
    await groups.delete("physics")  # the share goes with the group
    assert await gate(app_client, "/user/alice/", bob) == 403


async def test_deleting_a_named_server_ends_its_shares_for_a_new_one_of_that_name(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice, bob = await started(app_client, tokens_of, "x"), await tokens_of("bob")
    await app_client.post("/hub/api/shares/alice/x", json={"user": "bob"}, headers=auth(alice))
    assert await gate(app_client, "/user/alice/x/", bob, "/hub/forward-auth/alice/x") == 200
    removed = await app_client.delete("/hub/api/users/alice/servers/x", json={"remove": True}, headers=auth(alice))
    assert removed.status == 204
    await started(app_client, tokens_of, "x")
    assert await gate(app_client, "/user/alice/x/", bob, "/hub/forward-auth/alice/x") == 403


async def test_a_share_link_is_accepted_once_logged_in_and_can_be_revoked(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await started(app_client, tokens_of)
    made = await app_client.post("/hub/api/share-codes/alice/", json={"expires_in": 3600}, headers=auth(alice))
    assert made.status == 200, await made.text()
    code = await made.json()
    assert code["accept_url"] == f"/hub/accept-share?code={code['code']}" and code["id"].startswith("sc_")
    assert code["exchange_count"] == 0 and code["expires_at"].endswith("Z")
    listed = await (await app_client.get("/hub/api/share-codes/alice/", headers=auth(alice))).json()
    assert [item["id"] for item in listed["items"]] == [code["id"]] and "code" not in listed["items"][0]
    too_short = await app_client.post("/hub/api/share-codes/alice/", json={"expires_in": 5}, headers=auth(alice))
    assert too_short.status == 400

    csrf = await log_in(app_client, "bob")
    page = await app_client.get(code["accept_url"])
    assert page.status == 200 and "alice shares their server with you" in await page.text()
    forged = await app_client.post("/hub/accept-share", data={"code": code["code"]}, allow_redirects=False)
    assert forged.status == 403  # no CSRF token: a page elsewhere cannot accept for bob
    accepted = await app_client.post(
        "/hub/accept-share", data={"_xsrf": csrf, "code": code["code"]}, allow_redirects=False
    )
    assert accepted.status == 303 and accepted.headers["Location"] == "/hub/shared/alice"
    assert app_client.server.app[SHARING].may_use("bob", "alice")
    counted = await (await app_client.get("/hub/api/share-codes/alice/", headers=auth(alice))).json()
    assert counted["items"][0]["exchange_count"] == 1

    gone = await app_client.delete(f"/hub/api/share-codes/alice/?id={code['id']}", headers=auth(alice))
    assert gone.status == 204
    assert (await app_client.get(code["accept_url"])).status == 404
    again = await app_client.post("/hub/accept-share", data={"_xsrf": csrf, "code": code["code"]})
    assert again.status == 404


async def test_an_expired_share_link_opens_nothing(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = await started(app_client, tokens_of)
    code = await (await app_client.post("/hub/api/share-codes/alice/", json={}, headers=auth(alice))).json()
    async with app_client.server.app[SESSIONS].begin() as session:
        await session.execute(update(ShareCode).values(expires_at=dt.datetime(2001, 1, 1, tzinfo=dt.UTC)))
    csrf = await log_in(app_client, "bob")
    refused = await app_client.post("/hub/accept-share", data={"_xsrf": csrf, "code": code["code"]})
    assert refused.status == 404 and "expired" in await refused.text()
    assert not app_client.server.app[SHARING].may_use("bob", "alice")


async def test_bob_finds_the_shared_server_on_his_home_page_and_opening_it_marks_its_path(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await started(app_client, tokens_of)
    await log_in(app_client, "bob")
    assert "Shared with me" not in await (await app_client.get("/hub/home")).text()
    assert (await app_client.get("/hub/shared/alice", allow_redirects=False)).status == 403
    await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    home = await (await app_client.get("/hub/home")).text()
    assert "Shared with me" in home and 'href="/hub/shared/alice"' in home
    opened = await app_client.get("/hub/shared/alice", allow_redirects=False)
    assert opened.status == 302 and opened.headers["Location"] == "/user/alice/lab"
    cookie = opened.cookies["hubshare"]
    assert cookie.value == "1" and cookie["path"] == "/user/alice/" and cookie["httponly"]
    assert (await app_client.get("/hub/share/alice")).status == 403  # bob cannot manage alice's sharing


async def test_the_owners_sharing_page_adds_and_revokes(app_client: TestClient, tokens_of: TokenMaker) -> None:
    await started(app_client, tokens_of)
    csrf = await log_in(app_client, "alice")
    page = await app_client.get("/hub/share/alice")
    assert page.status == 200 and "Nobody else has access." in await page.text()
    form = {"_xsrf": csrf, "action": "grant", "kind": "user", "name": "bob", "until": "2999-01-01"}
    done = await app_client.post("/hub/share/alice", data=form)
    text = await done.text()
    assert "Shared with user bob." in text and 'data-grantee="bob"' in text and "3000-01-02" not in text
    assert "2999-01-02 00:00 UTC" in text
    link = await app_client.post("/hub/share/alice", data={"_xsrf": csrf, "action": "make-link"})
    assert "/hub/accept-share?code=" in await link.text()
    revoke = {"_xsrf": csrf, "action": "revoke", "kind": "user", "name": "bob"}
    assert "Nobody else has access." in await (await app_client.post("/hub/share/alice", data=revoke)).text()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A WebSocket server standing in for alice's: it reports what it got, then echoes."""
    seen: list[dict[str, str]] = []

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v1.kernel.websocket.jupyter.org",))
        await ws.prepare(request)
        seen.append({"path": request.path_qs, "auth": request.headers.get("Authorization", "")})
        await ws.send_str(json.dumps(seen[-1]))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo " + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_the_relay_carries_bobs_websocket_and_closes_it_when_the_share_is_revoked(
    app_client: TestClient, tokens_of: TokenMaker, echo_server: tuple[str, list[dict[str, str]]]
) -> None:
    app = app_client.server.app
    alice = await started(app_client, tokens_of)
    url, seen = echo_server
    async with app[SESSIONS].begin() as session:  # alice's fake server "runs" at the echo server
        alice_id = (await session.execute(User.__table__.select().where(User.name == "alice"))).first()
        assert alice_id is not None
        await session.execute(update(Server).where(Server.user_id == alice_id.id).values(url=url))
    await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    await log_in(app_client, "bob")
    path = "/hub/share-relay/user/alice/api/kernels/k1/channels?session_id=s1"
    tickets: TicketSigner = app[SHARE_TICKETS]

    for forged in ("", "bob|alice||9999999999|00", TicketSigner().issue(Ticket("bob", "alice", ""))):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await app_client.ws_connect(path, headers={"X-Share-Ticket": forged})
        assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):  # a ticket for someone else than the session's person
        await app_client.ws_connect(path, headers={"X-Share-Ticket": tickets.issue(Ticket("admin", "alice", ""))})
    with pytest.raises(aiohttp.WSServerHandshakeError):  # outside the shared server's prefix
        await app_client.ws_connect(
            "/hub/share-relay/user/bob/x", headers={"X-Share-Ticket": tickets.issue(Ticket("bob", "alice", ""))}
        )

    ws = await app_client.ws_connect(
        path,
        headers={"X-Share-Ticket": tickets.issue(Ticket("bob", "alice", ""))},
        protocols=("v1.kernel.websocket.jupyter.org",),
    )
    assert ws.protocol == "v1.kernel.websocket.jupyter.org"
    first = json.loads((await ws.receive(timeout=5)).data)
    secret = app[SERVERS].route_secret("alice")
    assert first == {"path": "/user/alice/api/kernels/k1/channels?session_id=s1", "auth": f"token {secret}"}
    await ws.send_str("hello")
    assert (await ws.receive(timeout=5)).data == "echo hello"
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive(timeout=5)).data == b"\x00\x01"
    assert app[SHARE_RELAYS].count("alice", "") == 1

    loop = asyncio.get_running_loop()
    began = loop.time()
    await app[SHARING].revoke("alice", "", user="bob")
    closing = await ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == REVOKED_CLOSE_CODE
    assert loop.time() - began < 1
    await ws.close()
    await asyncio.sleep(0.05)
    assert app[SHARE_RELAYS].count() == 0
    assert len(seen) == 1


async def test_a_relay_ends_when_the_share_expires(
    app_client: TestClient, tokens_of: TokenMaker, echo_server: tuple[str, list[dict[str, str]]]
) -> None:
    app = app_client.server.app
    await started(app_client, tokens_of)
    async with app[SESSIONS].begin() as session:
        await session.execute(update(Server).values(url=echo_server[0]))
    await log_in(app_client, "bob")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    await app[SHARING].grant("alice", "", user="bob", expires_at=soon)
    ticket = app[SHARE_TICKETS].issue(Ticket("bob", "alice", ""))
    ws = await app_client.ws_connect(
        "/hub/share-relay/user/alice/api/events/subscribe", headers={"X-Share-Ticket": ticket}
    )
    await ws.receive(timeout=5)
    await app[SHARE_RELAYS].sweep()
    assert app[SHARE_RELAYS].count() == 1  # still shared
    await asyncio.sleep(max((soon - dt.datetime.now(dt.UTC)).total_seconds(), 0) + 0.1)
    await app[SHARE_RELAYS].sweep()  # the hub runs this every second
    await ws.receive(timeout=5)
    assert ws.close_code == REVOKED_CLOSE_CODE
    assert app[ACCOUNTS].get("bob") is not None


async def test_a_recipients_websocket_handshake_never_passes_the_plain_http_gate(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await started(app_client, tokens_of)
    bob = await tokens_of("bob")
    await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    handshake = {
        **forwarded("/user/alice/api/kernels/k/channels", bob),
        "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
    }
    refused = await app_client.get("/hub/forward-auth/alice", headers=handshake)
    assert refused.status == 403 and "home page" in await refused.text()
    owner = {**forwarded("/user/alice/api/kernels/k/channels", alice), "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw=="}
    assert (await app_client.get("/hub/forward-auth/alice", headers=owner)).status == 200


async def test_a_server_gets_the_split_route_when_it_is_first_shared(
    app_client: TestClient, tokens_of: TokenMaker, proxy: FakeProxy
) -> None:
    alice = await started(app_client, tokens_of)
    await tokens_of("bob")
    slug = "alice"
    assert proxy.routes[slug].shared is False  # unshared: one router in Traefik, as cheap as before sharing
    shared = await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    assert shared.status == 200
    assert proxy.routes[slug].shared is True  # live before the owner's request returned


async def test_with_sharing_off_nobody_shares_and_old_shares_open_nothing(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    alice = await started(app_client, tokens_of)
    bob = await tokens_of("bob")
    await app_client.post("/hub/api/shares/alice/", json={"user": "bob"}, headers=auth(alice))
    assert await gate(app_client, "/user/alice/tree", bob) == 200
    app_client.server.app[SHARING].enabled = False  # as a hub restarted with sharing.enabled: false
    assert await gate(app_client, "/user/alice/tree", bob) == 403
    refused = await app_client.post("/hub/api/shares/alice/", json={"user": "admin"}, headers=auth(alice))
    assert refused.status == 403 and "turned off" in (await refused.json())["message"]
