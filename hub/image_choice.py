"""The one way to turn an image choice from a form or a request body into an offered image."""

from __future__ import annotations

from hub.config import ImageSpec, Settings
from hub.errors import UnknownImage
from hub.names import truncate


def chosen_image(settings: Settings, choice: object, *, hint: str = "") -> ImageSpec:
    """The offered image named ``choice``; anything else (a tampered form, a removed image) is a clear 400."""
    image = settings.image(choice) if isinstance(choice, str) else None
    if image is None:
        raise UnknownImage(f"The image {truncate(str(choice))!r} is not offered on this hub.{hint}")
    return image
