"""Groups through the REST API (JupyterHub's paths and shapes), and images kept for groups: the whole app in process."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from hub.config import Settings
from hub.keys import GROUPS
from tests.inprocess.conftest import IMAGES, TokenMaker
from tests.inprocess.pages import log_in

PAGINATION = "application/jupyterhub-pagination+json"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The usual two images and a third kept for the group physics."""
    return Settings(
        images=[
            *IMAGES,
            {"name": "gpu", "display_name": "GPU <lab>", "image": "fake/gpu:1", "allowed_groups": ["physics"]},
        ],
        hub={"data_dir": tmp_path / "data"},  # type: ignore[arg-type]
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def test_admins_manage_groups_in_jupyterhubs_shapes(app_client: TestClient, tokens_of: TokenMaker) -> None:
    admin = auth(await tokens_of("admin"))
    made = await app_client.post("/hub/api/groups/physics", headers=admin)
    assert made.status == 201
    assert await made.json() == {"kind": "group", "name": "physics", "users": [], "properties": {}, "roles": []}
    again = await app_client.post("/hub/api/groups/physics", headers=admin)
    assert again.status == 409 and "already exists" in (await again.json())["message"]

    several = await app_client.post("/hub/api/groups", json={"groups": ["maths", "art club"]}, headers=admin)
    assert several.status == 201 and [group["name"] for group in await several.json()] == ["maths", "art club"]

    added = await app_client.post("/hub/api/groups/physics/users", json={"users": ["alice", "bob"]}, headers=admin)
    assert added.status == 200 and (await added.json())["users"] == ["alice", "bob"]
    unknown = await app_client.post("/hub/api/groups/physics/users", json={"users": ["nobody"]}, headers=admin)
    assert unknown.status == 400 and "There is no user nobody." in (await unknown.json())["message"]
    removed = await app_client.delete("/hub/api/groups/physics/users", json={"users": ["bob"]}, headers=admin)
    assert (await removed.json())["users"] == ["alice"]

    group = await app_client.get("/hub/api/groups/physics", headers=admin)
    assert (await group.json())["users"] == ["alice"]
    spaced = await app_client.get("/hub/api/groups/art%20club", headers=admin)
    assert spaced.status == 200 and (await spaced.json())["name"] == "art club"
    user = await (await app_client.get("/hub/api/users/alice", headers=admin)).json()
    assert user["groups"] == ["physics"]

    listing = await (await app_client.get("/hub/api/groups", headers=admin)).json()
    assert [group["name"] for group in listing] == ["art club", "maths", "physics"]
    first = await app_client.get("/hub/api/groups", params={"limit": "2"}, headers={**admin, "Accept": PAGINATION})
    page = await first.json()
    assert [group["name"] for group in page["items"]] == ["art club", "maths"]
    assert page["_pagination"]["total"] == 3 and page["_pagination"]["next"]["offset"] == 2

    assert (await app_client.delete("/hub/api/groups/maths", headers=admin)).status == 204
    assert (await app_client.get("/hub/api/groups/maths", headers=admin)).status == 404
    bad = await app_client.post("/hub/api/groups", json={"groups": ["ok", "a" * 300]}, headers=admin)
    assert bad.status == 400 and "cannot be used as a group name" in (await bad.json())["message"]
    assert (await app_client.get("/hub/api/groups/ok", headers=admin)).status == 404  # nothing made


async def test_only_admins_see_or_change_groups(app_client: TestClient, tokens_of: TokenMaker) -> None:
    alice = auth(await tokens_of("alice"))
    await app_client.server.app[GROUPS].create(["physics"])
    assert (await app_client.get("/hub/api/groups", headers=alice)).status == 403
    assert (await app_client.get("/hub/api/groups/physics", headers=alice)).status == 403
    assert (await app_client.post("/hub/api/groups/staff", headers=alice)).status == 403
    refused = await app_client.post("/hub/api/groups/physics/users", json={"users": ["alice"]}, headers=alice)
    assert refused.status == 403
    assert (await app_client.delete("/hub/api/groups/physics", headers=alice)).status == 403
    assert (await app_client.get("/hub/api/groups")).status == 401
    assert app_client.server.app[GROUPS].groups_of("alice") == frozenset()


async def test_an_image_kept_for_a_group_starts_only_for_its_members(
    app_client: TestClient, tokens_of: TokenMaker
) -> None:
    admin, alice, bob = [auth(await tokens_of(name)) for name in ("admin", "alice", "bob")]
    await app_client.post("/hub/api/groups/physics", json={"users": ["alice"]}, headers=admin)
    refused = await app_client.post("/hub/api/users/bob/server", json={"image": "gpu"}, headers=bob)
    assert refused.status == 403
    assert (await refused.json())["message"].startswith("You may not start the image GPU <lab>.")
    started = await app_client.post("/hub/api/users/alice/server", json={"image": "gpu"}, headers=alice)
    assert started.status in (201, 202), await started.text()
    for_bob = await app_client.post("/hub/api/users/bob/server", json={"image": "gpu"}, headers=admin)
    assert for_bob.status in (201, 202)  # an admin may start any image, for anyone

    await app_client.delete("/hub/api/groups/physics/users", json={"users": ["alice"]}, headers=admin)
    await app_client.delete("/hub/api/users/alice/server", headers=alice)
    again = await app_client.post("/hub/api/users/alice/server", json={"image": "gpu"}, headers=alice)
    assert again.status == 403  # membership changes count at once


async def test_the_spawn_form_offers_only_what_a_person_may_start(app_client: TestClient) -> None:
    csrf = await log_in(app_client, "bob", "/hub/spawn")
    form = await (await app_client.get("/hub/spawn")).text()
    assert 'value="lab"' in form and 'value="gpu"' not in form
    tampered = await app_client.post("/hub/spawn", data={"_xsrf": csrf, "image": "gpu"}, allow_redirects=False)
    assert tampered.status == 403
    assert "You may not start the image GPU &lt;lab&gt;." in await tampered.text()
    await app_client.server.app[GROUPS].create(["physics"], ["bob"])
    assert 'value="gpu"' in await (await app_client.get("/hub/spawn")).text()


async def test_the_panel_escapes_group_names(app_client: TestClient) -> None:
    csrf = await log_in(app_client, "admin", "/hub/spawn")
    name = '<img src=x onerror="alert(1)"> & co'  # no '/': group names cannot hold one
    made = await app_client.post("/hub/admin/groups", data={"_xsrf": csrf, "name": name}, allow_redirects=False)
    assert made.status == 303
    page = await (await app_client.get(made.headers["Location"])).text()
    assert "<img" not in page and "&lt;img src=x" in page
    listing = await (await app_client.get("/hub/admin/groups")).text()
    assert "<img" not in listing and "&lt;img src=x" in listing
    no_csrf = await app_client.post("/hub/admin/groups", data={"name": "other"}, allow_redirects=False)
    assert no_csrf.status == 403
