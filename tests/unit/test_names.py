"""Names: refused when unsafe, escaped injectively and DNS-safely everywhere else."""

from __future__ import annotations

import random
import re

import pytest

from hub import names
from hub.errors import BadRequest, BadUsername

HOSTILE = ["../x", "Ünï", "a--b", "has@", "a/b", "a`b", "a b", "", ".", "..", "-a", "a" * 65, "x\ny", "a;rm", "ALICE"]
ALLOWED = ["alice", "a--b", "has@example.org", "bob.smith", "x_y", "a+b", "0day", "_svc"]


@pytest.mark.parametrize(
    "raw", ["../x", "Ünï", "a/b", "a`b", "a b", "", ".", "..", "-a", "a" * 65, "x\ny", "a;rm", "@x"]
)
def test_unsafe_names_are_refused_with_the_rules(raw: str) -> None:
    with pytest.raises(BadUsername) as refused:
        names.validate_username(names.normalize_username(raw))
    assert "cannot be used as a user name" in refused.value.user_message
    assert "lower-case letters" in refused.value.user_message


@pytest.mark.parametrize("raw", ALLOWED)
def test_usual_names_are_accepted(raw: str) -> None:
    assert names.validate_username(raw) == raw


def test_names_are_normalised_to_lower_case() -> None:
    assert names.normalize_username("  Alice ") == "alice"


def test_escaping_is_injective_and_dns_safe() -> None:
    rng = random.Random(7)
    alphabet = "ab-._@+Ü/"
    samples = set(HOSTILE) | set(ALLOWED) | {"user-2d", "user-", "user--foo", "-2d"}
    samples |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)}
    slugs = {}
    for raw in samples:
        slug = names.escape(raw)
        assert re.fullmatch(r"[a-z0-9-]*", slug), slug
        assert slugs.setdefault(slug, raw) == raw, f"{raw!r} and {slugs[slug]!r} share {slug!r}"


def test_long_names_get_bounded_distinct_slugs() -> None:
    first, second = "a" * 60 + "x", "a" * 60 + "y"
    assert len(names.user_slug(first)) <= names.MAX_SLUG
    assert names.user_slug(first) != names.user_slug(second)


def unescape(slug: str) -> str | None:
    """The text whose plain escape is ``slug``, or None when no text escapes to it."""
    out, i = bytearray(), 0
    while i < len(slug):
        if slug[i] == "-":
            pair = slug[i + 1 : i + 3]
            if not re.fullmatch(r"[0-9a-f]{2}", pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.extend(slug[i].encode())
            i += 1
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if names.escape(text) == slug else None


def adversarial_names(rng: random.Random) -> set[str]:
    """Valid names of every length around the cut, and names built to look like shortened slugs."""
    alphabet = "ab0-._@+"
    found = {"a" * n for n in range(1, 65)} | {"x" + "." * n for n in range(0, 63)}
    for _ in range(20000):
        length = rng.choice([rng.randint(1, 64), rng.randint(12, 22), rng.randint(30, 64)])
        found.add(rng.choice("ab0_") + "".join(rng.choice(alphabet) for _ in range(length - 1)))
    for long_name in list(found):
        slug = names.user_slug(long_name)
        if slug != names.escape(long_name):  # shortened: look for a valid name whose plain escape is that slug
            head, digest = slug[: -names.DIGEST_LENGTH - 2], slug[-names.DIGEST_LENGTH :]
            for forged in (unescape(slug), unescape(head + "-2d" + digest), unescape(head), head + "." + digest):
                if forged:
                    found.add(forged)
    return {name for name in found if names.USERNAME_PATTERN.fullmatch(name)}


def test_no_two_valid_names_share_a_slug_even_when_shortened() -> None:
    seen: dict[str, str] = {}
    for name in adversarial_names(random.Random(11)):
        slug = names.user_slug(name)
        assert len(slug) <= names.MAX_SLUG and re.fullmatch(r"[a-z0-9-]+", slug), slug
        assert seen.setdefault(slug, name) == name, f"{name!r} and {seen[slug]!r} share {slug!r}"
        if slug != names.escape(name):
            assert unescape(slug) is None, f"the shortened slug of {name!r} is the plain escape of another name"
    assert any(names.escape(name) != slug for slug, name in seen.items())


def test_docker_names_of_any_two_users_differ() -> None:
    rng = random.Random(3)
    users = sorted(adversarial_names(rng))[:5000]
    for make in (
        lambda slug: names.container_name("hub", slug),
        lambda slug: names.volume_name("hub", slug),
        names.route_id,
        names.route_file,
    ):
        made = {make(names.user_slug(name)) for name in users}
        assert len(made) == len(users)


def test_account_volumes_never_match_the_old_scheme() -> None:
    slug = names.user_slug("jsmith")
    this_term, next_term = (
        names.account_volume_name("hub", slug, "a1b2c3"),
        names.account_volume_name("hub", slug, "d4e5f6"),
    )
    assert this_term != next_term
    assert not this_term.startswith("hub-vol-") and names.volume_name("hub", slug) not in (this_term, next_term)


# -- named servers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "-x", ".x", "_x", "X", "a/b", "a b", "a" * 33, "ü", "a`b", "..", "x\ny"])
def test_unsafe_server_names_are_refused_with_the_rules(raw: str) -> None:
    with pytest.raises(BadRequest) as refused:
        names.validate_server_name(raw)
    assert "cannot be used as a server name" in refused.value.user_message
    assert "lower-case letters" in refused.value.user_message


@pytest.mark.parametrize("raw", ["x", "work", "0", "my-lab.2", "a_b", "a" * 32])
def test_usual_server_names_are_accepted(raw: str) -> None:
    assert names.validate_server_name(raw) == raw


def test_the_default_server_keeps_the_users_slug_and_address() -> None:
    assert names.server_slug("alice") == names.user_slug("alice") == "alice"
    assert names.server_prefix("alice") == "/user/alice/"
    assert names.server_prefix("alice", "x") == "/user/alice/x/"


def adversarial_servers(rng: random.Random) -> list[str]:
    """Valid server names, among them ones built to look like the tails of other slugs (hex digests)."""
    alphabet = "ab0-._"
    found = {"x", "2d", "2dx", "a-b", "a--b", "0" * 16, "0123456789abcdef", "a" * 32, "-".join("ab" * 8)}
    for _ in range(400):
        found.add(rng.choice("ab0") + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 31))))
    return sorted(name for name in found if names.SERVER_NAME_PATTERN.fullmatch(name))


def test_no_two_user_and_server_pairs_share_a_slug_and_none_takes_a_users_slug() -> None:
    rng = random.Random(5)
    every = sorted(adversarial_names(random.Random(11)))
    users = every[:: max(1, len(every) // 300)]
    servers = adversarial_servers(rng)[:150]
    # Users whose shortened slug holds "---": their head ended in "-". Another user whose slug is that head,
    # with a server named after the digest, is the pair that a three-dash separator would confuse with them.
    traps = [name for name in every if "---" in names.user_slug(name)][:40]
    assert traps, "the adversarial names must include a shortened slug with three dashes"
    for trap in traps:
        head, digest = names.user_slug(trap).rsplit("---", 1)
        forged = unescape(head)
        assert forged and names.USERNAME_PATTERN.fullmatch(forged)
        users += [trap, forged]
        servers.append(digest)
    seen: dict[str, tuple[str, str]] = {}
    for user in users:
        for server in ["", *servers]:
            slug = names.server_slug(user, server)
            assert len(slug) <= names.MAX_SLUG and re.fullmatch(r"[a-z0-9-]+", slug), slug
            pair = (user, server)
            assert seen.setdefault(slug, pair) == pair, f"{pair} and {seen[slug]} share {slug!r}"


def test_a_three_dash_separator_would_have_collided() -> None:
    """Why the separator is four dashes: the counterexample the tests above guard against."""
    trap = next(name for name in sorted(adversarial_names(random.Random(11))) if "---" in names.user_slug(name))
    head, digest = names.user_slug(trap).rsplit("---", 1)
    forged = unescape(head)
    assert forged is not None and names.user_slug(forged) == head
    assert f"{names.user_slug(forged)}---{names.escape(digest)}" == names.user_slug(trap)
    assert names.server_slug(forged, digest) != names.user_slug(trap)


def test_docker_names_of_servers_stay_dns_labels() -> None:
    slug = names.server_slug("a" * 64, "b" * 32)
    assert len(names.container_name("h" * 16, slug)) <= 63
    assert len(names.user_network_name("h" * 16, slug)) <= 63


@pytest.mark.parametrize("raw", ["api", "lab", "files", "static", "tree"])
def test_a_server_may_not_take_the_paths_of_the_default_server(raw: str) -> None:
    with pytest.raises(BadRequest, match="part of the addresses of your default server"):
        names.validate_server_name(raw)
