"""Names: refused when unsafe, escaped injectively and DNS-safely everywhere else."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from hub import names
from hub.errors import BadUsername

HOSTILE = ["../x", "Ünï", "a--b", "has@", "a/b", "a`b", "a b", "", ".", "..", "-a", "a" * 65, "x\ny", "a;rm", "ALICE"]
ALLOWED = ["alice", "a--b", "has@example.org", "bob.smith", "x_y", "a+b", "0day", "_svc"]


@pytest.mark.parametrize("raw", ["../x", "Ünï", "a/b", "a`b", "a b", "", ".", "..", "-a", "a" * 65, "x\ny", "a;rm", "@x"])
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


def test_docker_and_route_names_come_from_the_slug() -> None:
    slug = names.user_slug("bob.smith")
    assert slug == "bob-2esmith"
    assert names.container_name("hub", slug) == "hub-user-bob-2esmith"
    assert names.volume_name("hub", slug) == "hub-vol-bob-2esmith"
    assert names.route_file(slug) == "user-bob-2esmith.yaml"
    assert names.user_prefix("bob.smith") == "/user/bob.smith/"
    assert list(itertools.islice(names.labels("hub", "bob.smith", slug).items(), 2)) == [
        ("hub.managed", "true"), ("hub.prefix", "hub")]


def test_untrusted_text_is_truncated_for_logs() -> None:
    assert names.truncate("a\nb" + "x" * 100, 10) == "a?bxxxxxxx…"
