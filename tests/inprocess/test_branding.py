"""Branding from the configuration and admins' own templates, on the hub's pages: the whole app in process."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.config import Settings
from tests.fakes import FakeProxy, FakeSpawner
from tests.inprocess.conftest import IMAGES

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f80f0000010101005d0a2db40000000049454e44ae426082"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A hub named Physics Lab, with a logo, a colour, a login message and a login page of its own."""
    (tmp_path / "logo.png").write_bytes(PNG)
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "login.html").write_text(
        '{% extends "hub/login.html" %}\n'
        '{% block main %}<p id="local-note">Course rules: be kind.</p>{{ super() }}{% endblock %}\n'
    )
    return Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "data"},
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "routes"},
        branding={
            "name": "Physics <Lab>",
            "logo": tmp_path / "logo.png",
            "main_colour": "#8a1538",
            "login_message": "Welcome! <b>Rules</b>: [read them](https://example.org/rules), not [this](javascript:x)",
            "template_paths": [folder],
        },
    )


async def test_the_login_page_shows_the_branding_and_the_override(app_client: TestClient) -> None:
    page = await (await app_client.get("/hub/login")).text()
    assert "<title>Log in · Physics &lt;Lab&gt;</title>" in page
    assert '<span data-testid="hub-name">Physics &lt;Lab&gt;</span>' in page
    assert '<img class="logo" src="/hub/branding/logo" alt="">' in page
    assert '<link rel="stylesheet" href="/hub/branding/colours.css">' in page
    assert (
        '<p class="notice login-message" id="login-message">Welcome! &lt;b&gt;Rules&lt;/b&gt;: '
        '<a href="https://example.org/rules" rel="noopener noreferrer nofollow">read them</a>, '
        "not [this](javascript:x)</p>"
    ) in page
    assert page.index('id="local-note"') < page.index("<h1>Log in</h1>")  # the override, then the hub's page
    missing = await app_client.get("/hub/nowhere")
    text = await missing.text()
    assert missing.status == 404 and "Physics &lt;Lab&gt;" in text and "local-note" not in text


async def test_the_logo_and_the_colour_are_served(app_client: TestClient) -> None:
    logo = await app_client.get("/hub/branding/logo")
    assert logo.status == 200 and logo.content_type == "image/png" and await logo.read() == PNG
    css = await app_client.get("/hub/branding/colours.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert await css.text() == ":root { --accent: #8a1538; --accent-ink: #ffffff; --accent-text: #8a1538; }\n"
    assert "--accent" in (await (await app_client.get("/hub/static/hub.css")).text())


async def test_a_hub_without_branding_has_no_logo(tmp_path: Path) -> None:
    plain = Settings(
        images=IMAGES,
        hub={"data_dir": tmp_path / "plain"},
        lifecycle={"reconcile_interval": 3600, "dependency_check_interval": 3600},
        traefik={"dynamic_dir": tmp_path / "plain-routes"},
    )
    client = TestClient(TestServer(create_app(plain, spawner=FakeSpawner(), proxy=FakeProxy())))
    await client.start_server()
    try:
        page = await (await client.get("/hub/login")).text()
        assert "<title>Log in · Hub</title>" in page and "branding/" not in page and "login-message" not in page
        assert (await client.get("/hub/branding/logo")).status == 404
    finally:
        await client.close()
