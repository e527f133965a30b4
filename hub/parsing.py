"""The one way to read a whole number from a request (a query value, a header, a form field).

Only ASCII digits count (``"²".isdigit()`` is true, ``int("²")`` fails), and the length is checked
before converting, so no input can cost more than a few characters of work or end in a 500.
"""

from __future__ import annotations

from hub.errors import BadRequest
from hub.i18n import L_

MAX_DIGITS = 18  # fits a 64-bit database integer


def whole_number(raw: str | None, *, maximum: int = 10**MAX_DIGITS - 1) -> int | None:
    """The number in ``raw`` (ASCII digits only, at most ``maximum``), or None when it is not one."""
    if raw is None or not raw or len(raw) > MAX_DIGITS or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= maximum else None


def require_whole_number(
    raw: str | None, what: str, *, default: int | None = None, maximum: int = 10**MAX_DIGITS - 1
) -> int:
    """Like ``whole_number``, but a bad value is a 400 naming ``what``; a missing one gives ``default``."""
    if raw is None and default is not None:
        return default
    value = whole_number(raw, maximum=maximum)
    if value is None:
        raise BadRequest(L_("%(what)s must be a whole number from 0 to %(maximum)s.", what=what, maximum=maximum))
    return value
