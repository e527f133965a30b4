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
    """The colour of buttons and links, as #rrggbb or #rgb."""
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


def _channel(hex_pair: str) -> float:
    value = int(hex_pair, 16) / 255
    return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """The relative luminance (WCAG) of a #rrggbb or #rgb colour."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    red, green, blue = (_channel(digits[index : index + 2]) for index in (0, 2, 4))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def ink_for(colour: str) -> str:
    """White or dark text, whichever reads better on the colour (the higher contrast ratio)."""
    light = luminance(colour)
    on_white = 1.05 / (light + 0.05)
    on_dark = (light + 0.05) / (luminance("#1d2430") + 0.05)
    return "#fff" if on_white >= on_dark else "#1d2430"


def colour_css(colour: str) -> str:
    """The stylesheet that gives the hub's pages the main colour (the pages allow no inline styles)."""
    return f":root {{ --accent: {colour}; --accent-ink: {ink_for(colour)}; }}\n"
