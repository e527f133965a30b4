"""The only place where the hub makes names: user names, URLs, Docker names, labels, route ids, files.

User names are validated strictly (so they can go into a URL path and a Traefik rule as they are),
and every name that goes to Docker or the file system is additionally escaped into a *slug*:
``[a-z0-9]`` stay, every other character (``-`` included) becomes ``-xx`` with its UTF-8 bytes
in hex. The escaping is injective, so two users can never share a container, volume or file.
"""

from __future__ import annotations

import hashlib
import re

from hub.errors import BadRequest, BadUsername
from hub.i18n import L_

USERNAME_PATTERN = re.compile(r"^[a-z0-9_][a-z0-9._@+-]{0,63}$")
USERNAME_RULES = L_(
    "A user name has 1 to 64 characters: lower-case letters, digits and . _ @ + - and it cannot start with . + @ or -."
)
SERVER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
SERVER_NAME_RULES = L_(
    "A server name has 1 to 32 characters: lower-case letters, digits and . _ - and it starts with a letter or a digit."
)
RESERVED_SERVER_NAMES = frozenset(
    {
        "api",
        "lab",
        "tree",
        "files",
        "static",
        "edit",
        "view",
        "notebooks",
        "terminals",
        "kernelspecs",
        "nbconvert",
        "doc",
        "consoles",
        "voila",
        "login",
        "logout",
        "custom",
        "nbextensions",
        "hub",
        "user",
        "oauth_callback",
    }
)
"""First parts of the paths a Jupyter server serves: a named server called ``api`` would take
``/user/<name>/api/...`` from the user's default server (the longer prefix wins in Traefik)."""
SERVER_SEPARATOR = "----"
"""Between a user's slug and a server's escape. No user slug holds four dashes in a row (see server_slug)."""
SHORT_SERVER_MARK = "-----"
"""Before the digest of a shortened server slug: five dashes, which no other slug holds."""
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
MAX_SLUG = 40
DIGEST_LENGTH = 16


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


def validate_username(name: str) -> str:
    """Return the name if it can be used safely everywhere, else raise BadUsername."""
    if not USERNAME_PATTERN.fullmatch(name):
        raise BadUsername(
            L_("%(name)r cannot be used as a user name. %(rules)s", name=truncate(name), rules=USERNAME_RULES)
        )
    return name


def escape(text: str) -> str:
    """Injective, DNS-safe escape: ``[a-z0-9]`` kept, every other byte written as ``-xx``."""
    out: list[str] = []
    for char in text:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"-{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def user_slug(name: str) -> str:
    """The escaped form of a user name for Docker names, labels, route ids and file names.

    Names whose escape is longer than ``MAX_SLUG`` keep the start of it and end in ``--`` and 16 hex
    digits of the name's SHA-256. A plain escape never holds ``--`` (every ``-`` it writes is followed
    by two hex digits), so a shortened slug can never equal the slug of another, shorter name.
    """
    slug = escape(name)
    if len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
    return f"{slug[: MAX_SLUG - DIGEST_LENGTH - 2]}--{digest}"


def validate_server_name(name: str) -> str:
    """Return the name of a named server if it is allowed, else raise BadRequest (400) with the rules."""
    if not SERVER_NAME_PATTERN.fullmatch(name):
        raise BadRequest(
            L_("%(name)r cannot be used as a server name. %(rules)s", name=truncate(name), rules=SERVER_NAME_RULES)
        )
    if name in RESERVED_SERVER_NAMES:
        raise BadRequest(
            L_(
                "%(name)r cannot be used as a server name: it is part of the addresses of your default server. "
                "Please choose another name.",
                name=name,
            )
        )
    return name


def server_slug(user: str, server: str = "") -> str:
    """The slug of one server of a user: the user's slug for the default server (``""``), so names from before
    named servers stay as they were; for a named server, ``<user slug>----<escape(server)>``.

    Why no two (user, server) pairs share a slug, and none equals a user's slug:

    - A plain escape holds no ``--`` (each ``-`` it writes is followed by two hex digits), and a shortened user
      slug adds one ``--`` after a cut plain escape, which may end in ``-``: so a user slug holds at most three
      dashes in a row, and it ends in a letter or digit (a hex digit, when shortened).
    - A server name starts with a letter or a digit, so its escape does too, and holds no ``--``.
    - So ``<user slug>----<escape(server)>`` holds exactly one run of four dashes, and no longer run: the run
      splits it back into the user's slug (injective: ``user_slug``) and the server's escape (injective:
      ``escape``), and no user slug can equal it. (Three dashes would not do: a shortened user slug whose cut
      ends in ``-`` reads ``<21 characters>---<16 hex digits>``, which another user with a server named with
      those hex digits could otherwise match.)
    - Longer than ``MAX_SLUG``, it keeps its start without trailing dashes, then ``-----`` and 16 hex digits
      of the SHA-256 of the pair: a run of five dashes, which neither a user slug nor an unshortened server
      slug holds, and two shortened slugs differ unless SHA-256 collides (as for shortened user slugs).
    """
    if server == "":
        return user_slug(user)
    validate_server_name(server)
    plain = f"{user_slug(user)}{SERVER_SEPARATOR}{escape(server)}"
    if len(plain) <= MAX_SLUG:
        return plain
    digest = hashlib.sha256(f"{user}\0{server}".encode()).hexdigest()[:DIGEST_LENGTH]
    head = plain[: MAX_SLUG - DIGEST_LENGTH - len(SHORT_SERVER_MARK)].rstrip("-")
    return f"{head}{SHORT_SERVER_MARK}{digest}"


def container_name(prefix: str, slug: str) -> str:
    return f"{prefix}-user-{slug}"


def volume_name(prefix: str, slug: str) -> str:
    return f"{prefix}-vol-{slug}"


def account_volume_name(prefix: str, slug: str, nonce: str) -> str:
    """The volume of one account, with a random ``nonce`` drawn when the account first needs it.

    A name used again (next term's ``jsmith``) is a new account and draws a new nonce, so it never
    mounts the old account's files. (Not the account's id: SQLite hands a deleted last id out again.)
    ``data`` (not ``vol``, the kind of names from before) keeps the two schemes apart.
    """
    return f"{prefix}-data-{slug}-{nonce}"


def route_id(slug: str) -> str:
    return f"user-{slug}"


def route_file(slug: str) -> str:
    return f"user-{slug}.yaml"


def user_prefix(name: str) -> str:
    """The URL path of a user's server, with a trailing slash: ``/user/<name>/``."""
    return f"/user/{validate_username(name)}/"


def server_prefix(name: str, server: str = "") -> str:
    """The URL path of one of a user's servers: ``/user/<name>/`` (default) or ``/user/<name>/<server>/``."""
    return user_prefix(name) + (f"{validate_server_name(server)}/" if server else "")


def server_label(name: str, server: str = "") -> str:
    """A user's server in logs and messages: ``alice`` or ``alice/x``."""
    return f"{name}/{server}" if server else name


def labels(prefix: str, name: str, slug: str, extra: dict[str, str] | None = None, server: str = "") -> dict[str, str]:
    return {
        "hub.managed": "true",
        "hub.prefix": prefix,
        "hub.user": slug,
        "hub.username": name,
        "hub.server": server,
        **(extra or {}),
    }


def truncate(text: str, limit: int = 40) -> str:
    """Untrusted text for logs: bounded and printable."""
    cleaned = "".join(char if char.isprintable() else "?" for char in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def user_network_name(prefix: str, slug: str) -> str:
    """The Docker network of one user's server when servers are isolated (``spawner.isolation: per_user``)."""
    return f"{prefix}-net-{slug}"
