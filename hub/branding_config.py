"""The ``branding:`` section of the configuration: the hub's name, logo, main colour, login-page message
and folders of templates that override the hub's own pages."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
MAX_LOGIN_MESSAGE = 1000


class BrandingSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("Hub", min_length=1, max_length=64)
    """The hub's name in the header and in every page's title."""
    logo: Path | None = None
    """An image file (png, jpg, gif, webp, svg or ico) shown in the header, served at /hub/branding/logo."""
    main_colour: str | None = None
    """The colour of buttons and links, as #rrggbb or #rgb. Any colour works: text on it is black or white,
    whichever contrasts more (always at least 4.5:1), and links take a darker shade of it when it is too light
    to read on white."""
    login_message: str = Field("", max_length=MAX_LOGIN_MESSAGE)
    """Shown on the login page; escaped, and http(s) addresses become links (as in announcements)."""
    template_paths: list[Path] = []
    """Folders searched for templates before the hub's own: a login.html there replaces the hub's login page.
    The hub's templates stay reachable as hub/<name>, e.g. {% extends "hub/login.html" %}."""

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("must be printable text, not only spaces")
        return value.strip()

    @field_validator("logo", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("logo")
    @classmethod
    def _image_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if value.suffix.lower() not in LOGO_TYPES:
            raise ValueError(f"{value} is not an image file the hub serves ({', '.join(sorted(LOGO_TYPES))})")
        if not value.is_file():
            raise ValueError(f"there is no file at {value}")
        return value

    @field_validator("main_colour", mode="before")
    @classmethod
    def _colour(cls, value: object) -> object:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not COLOUR.fullmatch(value):
            raise ValueError(f"{str(value)[:40]!r} is not a colour: write it as #rrggbb or #rgb, e.g. #2459d6")
        return value.lower()

    @field_validator("template_paths")
    @classmethod
    def _folders(cls, value: list[Path]) -> list[Path]:
        for folder in value:
            if not folder.is_dir():
                raise ValueError(f"{folder} is not a folder")
        return value

    @property
    def logo_type(self) -> str:
        return LOGO_TYPES[self.logo.suffix.lower()] if self.logo else "application/octet-stream"


WHITE, BLACK = "#ffffff", "#000000"
MIN_TEXT_CONTRAST = 4.5
"""WCAG 2 level AA for normal text: the hub's text on the main colour, and its links, reach at least this."""
LINK_BACKGROUNDS = ("#ffffff", "#f5f7fa", "#fff8e1", "#eef3ff")
"""Where links sit in hub.css: cards, the page, announcements, notices."""


def _channel(hex_pair: str) -> float:
    value = int(hex_pair, 16) / 255
    return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4


def _digits(colour: str) -> str:
    digits = colour.lstrip("#")
    return "".join(digit * 2 for digit in digits) if len(digits) == 3 else digits


def luminance(colour: str) -> float:
    """The relative luminance (WCAG) of a #rrggbb or #rgb colour."""
    digits = _digits(colour)
    red, green, blue = (_channel(digits[index : index + 2]) for index in (0, 2, 4))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: str, other: str) -> float:
    """The WCAG contrast ratio of two colours, from 1 (the same) to 21 (black on white)."""
    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def ink_for(colour: str) -> str:
    """Black or white text on the colour, whichever has the higher contrast ratio. The worse of the two is at
    best about 4.58:1 (where both are equal), so every colour gets text of at least 4.5:1 and none is refused."""
    return WHITE if contrast(colour, WHITE) >= contrast(colour, BLACK) else BLACK


def text_shade(colour: str, backgrounds: tuple[str, ...] = LINK_BACKGROUNDS) -> str:
    """The colour itself when it reads as text (links) on every background at 4.5:1, else the lightest darker
    shade of it (the same hue, each channel scaled down) that does; black at worst."""
    red, green, blue = (int(_digits(colour)[index : index + 2], 16) for index in (0, 2, 4))
    for step in range(100, -1, -1):
        shade = "#" + "".join(f"{round(channel * step / 100):02x}" for channel in (red, green, blue))
        if all(contrast(shade, background) >= MIN_TEXT_CONTRAST for background in backgrounds):
            return shade
    return BLACK


def colour_css(colour: str) -> str:
    """The stylesheet that gives the hub's pages the main colour (the pages allow no inline styles): buttons
    and borders in the colour with black or white text on it, links and focus rings in a shade that reads."""
    return f":root {{ --accent: {colour}; --accent-ink: {ink_for(colour)}; --accent-text: {text_shade(colour)}; }}\n"
