"""Announcements through the REST API and the admin panel, and on every page: the whole app in process."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from aiohttp.test_utils import TestClient

import hub.announcements
from hub.announcements import ANNOUNCEMENTS
from tests.fakes import FakeSpawner
from tests.inprocess.conftest import TokenMaker
from tests.inprocess.pages import log_in


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def shown(page: str) -> list[str]:
    """The announcements a page shows, as HTML."""
    return re.findall(r'<p class="announcement" data-announcement="\d+">(.*?)</p>', page, re.S)


async def test_admins_announce_through_the_api_and_everyone_reads_them(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    admin, alice = auth(await tokens_of("admin")), auth(await tokens_of("alice"))
    made = await app_client.post(
        "/hub/api/announcements",
        json={"text": "Down on Friday.", "ends_at": "2099-05-01T18:00:00+02:00"},
        headers=admin,
    )
    assert made.status == 201
    body = await made.json()
    assert set(body) == {"id", "text", "ends_at", "created", "created_by"}
    assert body["text"] == "Down on Friday." and body["ends_at"] == "2099-05-01T16:00:00Z"
    assert body["created_by"] == "admin" and body["created"].endswith("Z")
    dt.datetime.fromisoformat(body["created"].replace("Z", "+00:00"))
    forever = await (await app_client.post("/hub/api/announcements", json={"text": "Hello"}, headers=admin)).json()
    assert forever["ends_at"] is None

    listing = await app_client.get("/hub/api/announcements", headers=alice)  # any logged-in user reads them
    assert listing.status == 200 and await listing.json() == [body, forever]
    assert (await app_client.get("/hub/api/announcements")).status == 401

    assert (await app_client.delete(f"/hub/api/announcements/{body['id']}", headers=admin)).status == 204
    assert await (await app_client.get("/hub/api/announcements", headers=alice)).json() == [forever]
    again = await app_client.delete(f"/hub/api/announcements/{body['id']}", headers=admin)
    assert again.status == 404 and (await again.json())["message"] == f"There is no announcement {body['id']}."
    assert (await app_client.delete("/hub/api/announcements/abc", headers=admin)).status == 404


async def test_only_admins_change_announcements(app_client: TestClient, tokens_of: TokenMaker) -> None:
    admin, alice = auth(await tokens_of("admin")), auth(await tokens_of("alice"))
    refused = await app_client.post("/hub/api/announcements", json={"text": "I am the admin now"}, headers=alice)
    assert refused.status == 403 and (await refused.json())["message"] == "Only admins may do this."
    made = await (await app_client.post("/hub/api/announcements", json={"text": "Real"}, headers=admin)).json()
    assert (await app_client.delete(f"/hub/api/announcements/{made['id']}", headers=alice)).status == 403
    assert [item["text"] for item in await (await app_client.get("/hub/api/announcements", headers=alice)).json()] == [
        "Real"
    ]


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"text": "x" * 1001}, "The announcement is 1001 characters long; it may have at most 1000."),
        ({"text": "  "}, "Write the announcement's text: it is empty."),
        ({}, 'Send {"text": "...", "ends_at": "2026-05-01T18:00:00Z" or null}.'),
        ({"text": "a", "ends_at": "2001-01-01T00:00:00Z"}, "has already passed: choose a time in the future."),
        ({"text": "a", "ends_at": "Friday"}, "'Friday' is not a time: write it in ISO 8601"),
        ({"text": "a", "colour": "red"}, "Unknown field(s): colour"),
        ({"text": 5}, "text must be a string"),
    ],
)
async def test_bad_announcements_are_refused_in_plain_words(
    app_client: TestClient, tokens_of: TokenMaker, body: dict[str, object], problem: str
) -> None:
    response = await app_client.post("/hub/api/announcements", json=body, headers=auth(await tokens_of("admin")))
    assert response.status == 400
    assert problem in (await response.json())["message"]
    assert app_client.server.app[ANNOUNCEMENTS].all() == ()


async def test_the_panel_adds_and_removes_announcements_with_csrf(app_client: TestClient) -> None:
    csrf = await log_in(app_client, "admin")
    panel = await (await app_client.get("/hub/admin")).text()
    assert 'href="/hub/admin/announcements" id="announcements-link"' in panel
    form = {"text": "Exams <b>week</b>: see [the plan](https://example.org/plan)", "ends_at": "2099-01-01T12:00"}
    forged = await app_client.post("/hub/admin/announcements", data=form, allow_redirects=False)
    assert forged.status == 403 and app_client.server.app[ANNOUNCEMENTS].all() == ()

    made = await app_client.post(
        "/hub/admin/announcements", data={**form, "_xsrf": csrf, "utc_offset": "60"}, allow_redirects=False
    )
    assert made.status == 303 and made.headers["Location"] == "/hub/admin/announcements"
    (item,) = app_client.server.app[ANNOUNCEMENTS].all()
    assert item.ends_at == dt.datetime(2099, 1, 1, 11, tzinfo=dt.UTC) and item.created_by == "admin"
    page = await (await app_client.get("/hub/admin/announcements")).text()
    assert "The announcement is on every page now." in page and "2099-01-01 11:00 UTC" in page
    expected = (
        'Exams &lt;b&gt;week&lt;/b&gt;: see <a href="https://example.org/plan" rel="noopener noreferrer nofollow">'
        "the plan</a>"
    )
    assert shown(page) == [expected]

    too_long = await app_client.post("/hub/admin/announcements", data={"_xsrf": csrf, "text": "y" * 1001})
    assert too_long.status == 400 and "it may have at most 1000" in await too_long.text()

    remove = f"/hub/admin/announcements/{item.id}/remove"
    forged_removal = await app_client.post(remove, allow_redirects=False)  # no CSRF token: refused
    assert forged_removal.status == 403
    assert shown(await forged_removal.text()) == [expected]  # even the refusal's page shows it
    assert (await app_client.post(remove, data={"_xsrf": csrf}, allow_redirects=False)).status == 303
    assert shown(await (await app_client.get("/hub/home")).text()) == []


async def test_only_admins_open_the_panel_page(app_client: TestClient) -> None:
    csrf = await log_in(app_client, "alice")
    assert (await app_client.get("/hub/admin/announcements")).status == 403
    refused = await app_client.post("/hub/admin/announcements", data={"_xsrf": csrf, "text": "hi"})
    assert refused.status == 403 and app_client.server.app[ANNOUNCEMENTS].all() == ()


async def test_every_page_shows_current_announcements_until_they_end(
    app_client: TestClient, tokens_of: TokenMaker, spawner: FakeSpawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner.gate = asyncio.Event()  # alice's start stays in flight: her progress page stays
    board = app_client.server.app[ANNOUNCEMENTS]
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    await board.add("Maintenance <tonight>", soon, "admin")
    await board.add("Welcome to the course", None, "admin")
    pages = {"/hub/login": 200, "/hub/nowhere": 404}
    for path, status in pages.items():  # logged out: the login page and error pages
        response = await app_client.get(path)
        assert response.status == status
        assert shown(await response.text()) == ["Maintenance &lt;tonight&gt;", "Welcome to the course"], path
    csrf = await log_in(app_client, "alice")
    started = await app_client.post("/hub/spawn", data={"_xsrf": csrf, "image": "lab"}, allow_redirects=False)
    assert started.status == 303 and started.headers["Location"] == "/hub/spawn-pending/alice"
    progress = await (await app_client.get("/hub/spawn-pending/alice")).text()
    assert 'id="progress-card"' in progress and len(shown(progress)) == 2
    forbidden = await app_client.get("/hub/spawn-pending/bob")
    assert forbidden.status == 403 and len(shown(await forbidden.text())) == 2
    for path in ("/hub/home", "/hub/token", "/hub/admin/announcements"):
        assert len(shown(await (await app_client.get(path)).text())) == 2, path

    later = soon + dt.timedelta(seconds=1)
    monkeypatch.setattr(hub.announcements, "utcnow", lambda: later)
    assert shown(await (await app_client.get("/hub/home")).text()) == ["Welcome to the course"]
    api = await app_client.get("/hub/api/announcements", headers=auth(await tokens_of("bob")))
    assert [item["text"] for item in await api.json()] == ["Welcome to the course"]
    spawner.gate.set()
