"""The branding section: names, colours and files are checked when the configuration loads."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from hub.app import template_loader
from hub.branding_config import colour_css, ink_for
from hub.config import ConfigError, Settings, load_settings

MINIMAL = {"images": [{"name": "lab", "image": "example/lab:1"}]}


def load(tmp_path: Path, branding: dict[str, object]) -> Settings:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "branding": branding}))
    return load_settings(path)


def test_defaults_keep_the_hub_as_it_was(tmp_path: Path) -> None:
    branding = load(tmp_path, {}).branding
    assert branding.name == "Hub" and branding.logo is None and branding.main_colour is None
    assert branding.login_message == "" and branding.template_paths == []


def test_a_full_branding_section_loads(tmp_path: Path) -> None:
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "templates").mkdir()
    branding = load(
        tmp_path,
        {
            "name": "Physics Lab",
            "logo": str(tmp_path / "logo.svg"),
            "main_colour": "#8A1538",
            "login_message": "Welcome",
            "template_paths": [str(tmp_path / "templates")],
        },
    ).branding
    assert branding.name == "Physics Lab" and branding.main_colour == "#8a1538"
    assert branding.logo_type == "image/svg+xml"
    assert load(tmp_path, {"logo": "", "main_colour": "#abc"}).branding.logo is None


@pytest.mark.parametrize(
    "colour",
    [
        "red",
        "#12345",
        "#1234567",
        "#ggg",
        "#fff;background:url(x)",
        "#fff}body{display:none",
        "#fff\n",
        "rgb(1,2,3)",
        "var(--x)",
    ],
)
def test_only_hex_colours_are_taken(tmp_path: Path, colour: str) -> None:
    with pytest.raises(ConfigError, match=r"branding.main_colour: .* is not a colour: write it as #rrggbb or #rgb"):
        load(tmp_path, {"main_colour": colour})


@pytest.mark.parametrize(
    "branding, problem",
    [
        ({"name": ""}, "branding.name: String should have at least 1 character"),
        ({"name": "a\nb"}, "branding.name: must be printable text"),
        ({"logo": "/nonexistent/logo.png"}, "branding.logo: there is no file at /nonexistent/logo.png"),
        ({"logo": "/etc/passwd"}, "branding.logo: /etc/passwd is not an image file the hub serves"),
        (
            {"template_paths": ["/nonexistent/templates"]},
            "branding.template_paths: /nonexistent/templates is not a folder",
        ),
        ({"login_message": "x" * 1001}, "branding.login_message: String should have at most 1000 characters"),
        ({"colour": "#fff"}, "branding.colour: is not a known setting"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, branding: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, branding)
    assert problem in str(raised.value)


def test_the_colour_gets_readable_text() -> None:
    assert ink_for("#2459d6") == "#fff"  # the hub's own blue keeps white text
    assert ink_for("#ffd700") == "#1d2430"  # gold gets dark text
    assert colour_css("#8a1538") == ":root { --accent: #8a1538; --accent-ink: #fff; }\n"


def test_template_folders_come_first_and_the_hubs_pages_stay_reachable(tmp_path: Path) -> None:
    (tmp_path / "login.html").write_text('{% extends "hub/login.html" %}{% block title %}Mine{% endblock %}')
    settings = Settings(images=MINIMAL["images"], branding={"template_paths": [tmp_path]})
    environment = jinja2.Environment(loader=template_loader(settings))
    mine, source = environment.loader.get_source(environment, "login.html")[:2]  # type: ignore[union-attr]
    assert "hub/login.html" in mine and source == str(tmp_path / "login.html")
    original = environment.loader.get_source(environment, "hub/login.html")[0]  # type: ignore[union-attr]
    assert '<h1>{{ _("Log in") }}</h1>' in original
