"""The one way to turn an image choice from a form or a request body into an offered image, and the rule
of who may start which image."""

from __future__ import annotations

from collections.abc import Iterable

from hub.config import ImageSpec, Settings
from hub.errors import Forbidden, UnknownImage
from hub.i18n import L_
from hub.names import truncate


def chosen_image(settings: Settings, choice: object, *, hint: str = "") -> ImageSpec:
    """The offered image named ``choice``; anything else (a tampered form, a removed image) is a clear 400."""
    image = settings.image(choice) if isinstance(choice, str) else None
    if image is None:
        raise UnknownImage(
            L_("The image %(choice)r is not offered on this hub.%(hint)s", choice=truncate(str(choice)), hint=hint)
        )
    return image


def may_start(image: ImageSpec, groups: frozenset[str], admin: bool) -> bool:
    """An image without ``allowed_groups`` is for everyone; one with them, for their members and for admins."""
    return admin or not image.allowed_groups or not groups.isdisjoint(image.allowed_groups)


def startable_images(images: Iterable[ImageSpec], groups: frozenset[str], admin: bool) -> list[ImageSpec]:
    """The images a person may start, in the configured order (what the spawn form shows them)."""
    return [image for image in images if may_start(image, groups, admin)]


def default_image(settings: Settings, groups: frozenset[str], admin: bool) -> ImageSpec | None:
    """The configured default when the person may start it, else the first image they may start."""
    default = settings.image(settings.default_image_name)
    if default is not None and may_start(default, groups, admin):
        return default
    return next(iter(startable_images(settings.images, groups, admin)), None)


def require_may_start(image: ImageSpec, groups: frozenset[str], admin: bool) -> ImageSpec:
    """The image, when the person may start it; else a clear 403."""
    if not may_start(image, groups, admin):
        raise Forbidden(
            L_(
                "You may not start the image %(image)s. It is kept for some groups of users; ask an admin if you "
                "need it.",
                image=image.title,
            ),
            f"refused image {image.name} (allowed_groups {image.allowed_groups})",
        )
    return image
