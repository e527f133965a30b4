"""Text written by admins (announcements, the login-page message) made safe to put into a page.

Everything is escaped; the only markup that comes out is a link to an http(s) address, written either bare
(``https://example.org/page``) or as ``[the words](https://example.org/page)``. Any other scheme
(``javascript:``, ``data:``) stays plain text. The text is cut into pieces first and each piece is escaped
on its own, so nothing the admin types can close an attribute or open a tag.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from markupsafe import Markup, escape

# An address: http(s)://, then characters that cannot end an attribute or a tag, or start an entity in a
# way that matters (quotes, <, >, backticks and spaces are never part of it).
_ADDRESS = r"https?://[^\s<>\"'`()\[\]{}\\]+"
_LINK = re.compile(
    rf"\[(?P<words>[^\[\]\n]{{1,200}})\]\((?P<target>{_ADDRESS})\)"  # [words](https://...)
    rf"|(?P<bare>{_ADDRESS})",  # https://...
    re.IGNORECASE,
)
_TRAILING = ".,;:!?"


def is_web_address(address: str) -> bool:
    """Whether the address is an http(s) one with a host (what may become a link)."""
    try:
        parts = urlsplit(address)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _anchor(address: str, words: str) -> Markup:
    return Markup('<a href="{}" rel="noopener noreferrer nofollow">{}</a>').format(address, words)


def render_safe(text: str) -> Markup:
    """The text as HTML: escaped, with its http(s) addresses (bare or ``[words](address)``) as links."""
    pieces: list[Markup] = []
    position = 0
    for match in _LINK.finditer(text):
        address = match.group("target") or match.group("bare")
        words = match.group("words")
        tail = ""
        if words is None:  # a bare address: a full stop or comma after it ends the sentence, not the address
            stripped = address.rstrip(_TRAILING)
            tail, address = address[len(stripped) :], stripped
        if not is_web_address(address):
            continue  # left in the text, escaped with it
        pieces.append(escape(text[position : match.start()]))
        pieces.append(_anchor(address, words if words is not None else address))
        pieces.append(escape(tail))
        position = match.end()
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)
