"""The hub's choice of subnets for per-user networks: inside its pool, never over a subnet in use."""

from __future__ import annotations

import random
from ipaddress import IPv4Network, ip_network
from pathlib import Path

import pytest
import yaml

from hub.config import ConfigError, load_settings
from hub.networks import pick_subnet

POOL = IPv4Network("10.213.0.0/24")


def brute_force(pool: IPv4Network, prefixlen: int, used: list[IPv4Network]) -> IPv4Network | None:
    return next((net for net in pool.subnets(new_prefix=prefixlen) if not any(net.overlaps(u) for u in used)), None)


@pytest.mark.parametrize(
    "used, expected",
    [
        ([], "10.213.0.0/28"),
        (["10.213.0.0/28", "10.213.0.16/28"], "10.213.0.32/28"),
        (["10.213.0.0/27", "10.213.0.40/29"], "10.213.0.48/28"),  # a smaller network blocks the block it lies in
        (["10.213.0.0/25"], "10.213.0.128/28"),  # a larger one blocks all blocks it covers
        (["10.0.0.0/8"], None),  # the whole pool is taken
        (["172.17.0.0/16", "fd00::/64", "10.214.0.0/16"], "10.213.0.0/28"),  # outside the pool, or IPv6: no matter
        (["10.213.0.5/32", "10.213.0.20/30"], "10.213.0.32/28"),
    ],
)
def test_the_first_free_block_of_the_pool_is_chosen(used: list[str], expected: str | None) -> None:
    chosen = pick_subnet(POOL, 28, [ip_network(net) for net in used])
    assert (str(chosen) if chosen else None) == expected


def test_a_full_pool_gives_none() -> None:
    assert pick_subnet(POOL, 28, list(POOL.subnets(new_prefix=28))) is None


def test_the_choice_agrees_with_trying_every_block() -> None:
    rng = random.Random(7)
    for _ in range(300):
        prefixlen = rng.choice([26, 28, 29])
        used = [
            IPv4Network((int(POOL.network_address) + rng.randrange(256) // 2 ** (32 - p) * 2 ** (32 - p), p))
            for p in (rng.choice([24, 25, 27, 28, 29, 30, 32]) for _ in range(rng.randrange(12)))
        ]
        assert pick_subnet(POOL, prefixlen, used) == brute_force(POOL, prefixlen, used)


@pytest.mark.parametrize(
    "spawner, problem",
    [
        (
            {"isolated_subnet_pool": "10.213.0.0/24", "isolated_subnet_size": 20},
            "spawner.isolated_subnet_size: /20 networks do not fit into isolated_subnet_pool 10.213.0.0/24",
        ),
        ({"isolated_subnet_pool": "10.213.0.1/16"}, "spawner.isolated_subnet_pool: Input is not a valid IPv4 network"),
        ({"isolated_subnet_size": 30}, "spawner.isolated_subnet_size: Input should be less than or equal to 29"),
        ({"isolation": "private"}, "spawner.isolation: Input should be 'shared' or 'per_user'"),
    ],
)
def test_a_pool_that_cannot_work_is_named_at_start(tmp_path: Path, spawner: dict[str, object], problem: str) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump({"images": [{"name": "lab", "image": "example/lab:1"}], "spawner": spawner}))
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert problem in str(raised.value)
