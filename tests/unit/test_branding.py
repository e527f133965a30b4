"""The branding section: names, colours and files are checked when the configuration loads."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from hub.app import template_loader
from hub.branding_config import (
    LINK_BACKGROUNDS,
    MIN_TEXT_CONTRAST,
    colour_css,
    contrast,
    ink_for,
    luminance,
    text_shade,
)
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


def test_the_contrast_ratio_is_wcags() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#fff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#fff") == pytest.approx(4.54, abs=0.01)  # the well-known lightest grey for AA
    assert contrast("#2459d6", "#ffffff") == contrast("#ffffff", "#2459d6")


def test_the_colour_gets_readable_text() -> None:
    assert ink_for("#2459d6") == "#ffffff"  # the hub's own blue keeps white text
    assert ink_for("#ffd700") == "#000000"  # gold gets black text
    assert colour_css("#8a1538") == ":root { --accent: #8a1538; --accent-ink: #ffffff; --accent-text: #8a1538; }\n"


def test_every_colour_gets_text_of_at_least_four_and_a_half_to_one() -> None:
    """Black or white on any colour reaches 4.5:1, so no main colour needs to be refused."""
    steps = range(0, 256, 5)
    worst = min(
        contrast(colour, ink_for(colour))
        for colour in (f"#{red:02x}{green:02x}{blue:02x}" for red in steps for green in steps for blue in steps)
    )
    assert MIN_TEXT_CONTRAST <= worst < 4.6
    assert contrast("#777777", ink_for("#777777")) >= MIN_TEXT_CONTRAST  # a grey near the worst case


@pytest.mark.parametrize("colour", ["#ffd700", "#ffffff", "#00ff00", "#f0f", "#777777", "#2459d6", "#8a1538"])
def test_links_take_a_shade_of_the_colour_that_reads_on_white(colour: str) -> None:
    shade = text_shade(colour)
    assert all(contrast(shade, background) >= MIN_TEXT_CONTRAST for background in LINK_BACKGROUNDS)
    if all(contrast(colour, background) >= MIN_TEXT_CONTRAST for background in LINK_BACKGROUNDS):
        assert shade == colour  # dark enough already: the colour itself
    else:
        assert luminance(shade) < luminance(colour)
    assert text_shade("#ffd700") == "#826e00"  # gold's links: a dark gold, not an unreadable yellow
    assert "--accent-text: #826e00;" in colour_css("#ffd700")


def test_template_folders_come_first_and_the_hubs_pages_stay_reachable(tmp_path: Path) -> None:
    (tmp_path / "login.html").write_text('{% extends "hub/login.html" %}{% block title %}Mine{% endblock %}')
    settings = Settings(images=MINIMAL["images"], branding={"template_paths": [tmp_path]})
    environment = jinja2.Environment(loader=template_loader(settings))
    mine, source = environment.loader.get_source(environment, "login.html")[:2]  # type: ignore[union-attr]
    assert "hub/login.html" in mine and source == str(tmp_path / "login.html")
    original = environment.loader.get_source(environment, "hub/login.html")[0]  # type: ignore[union-attr]
    assert '<h1>{{ _("Log in") }}</h1>' in original
