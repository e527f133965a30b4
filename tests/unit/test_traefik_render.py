"""What the hub writes for Traefik, checked without Traefik (the real one is in integration/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub.config import HubSection
from hub.proxy import Route
from hub.traefik import atomic_write, dump_checked, render_hub_route, render_route


def route(**changes: object) -> Route:
    values = dict(username="bob.smith", slug="bob-2esmith", prefix="/user/bob.smith/", target="http://172.20.0.5:8888")
    values.update(changes)
    return Route(**values)  # type: ignore[arg-type]


def test_a_route_sends_the_users_prefix_through_auth_which_hands_over_the_token() -> None:
    config = render_route(route(), hub_url="http://127.0.0.1:8081", entrypoint="web")["http"]
    router = config["routers"]["user-bob-2esmith"]
    assert router["rule"] == "PathPrefix(`/user/bob.smith/`)"
    assert router["middlewares"] == ["user-bob-2esmith-auth"]
    assert config["services"]["user-bob-2esmith"]["loadBalancer"]["servers"] == [{"url": "http://172.20.0.5:8888"}]
    auth = config["middlewares"]["user-bob-2esmith-auth"]["forwardAuth"]
    assert auth["address"] == "http://127.0.0.1:8081/hub/forward-auth/bob.smith"
    assert auth["authResponseHeaders"] == ["Authorization", "Cookie"]  # the token comes from the hub's answer
    assert "token" not in dump_checked(config).lower().replace("authorization", "")  # no secret in the file


def test_forward_auth_asks_the_lean_listener_and_the_relay_stays_on_the_hub_port() -> None:
    shared = route(shared=True)
    config = render_route(shared, hub_url="http://hub:8081", auth_url="http://hub:8082", entrypoint="web")["http"]
    addresses = {name: m["forwardAuth"]["address"] for name, m in config["middlewares"].items() if "forwardAuth" in m}
    assert addresses == {
        "user-bob-2esmith-auth": "http://hub:8082/hub/forward-auth/bob.smith",
        "user-bob-2esmith-auth-ws": "http://hub:8082/hub/forward-auth-ws/bob.smith",
        "user-bob-2esmith-auth-share": "http://hub:8082/hub/forward-auth-share/bob.smith",
    }
    assert config["services"]["user-bob-2esmith-relay"]["loadBalancer"]["servers"] == [{"url": "http://hub:8081"}]


@pytest.mark.parametrize(
    "hub, expected",
    [
        ({"internal_url": "http://hub-internal:8081"}, "http://hub-internal:8082"),
        ({"bind_host": "0.0.0.0", "bind_port": 9000, "forward_auth_port": 9001}, "http://127.0.0.1:9001"),
        ({"internal_url": "http://hub-internal:8081/", "forward_auth_port": 0}, "http://hub-internal:8081"),
    ],
)
def test_where_forward_auth_is_asked(hub: dict[str, object], expected: str) -> None:
    assert HubSection(**hub).forward_auth_url == expected  # type: ignore[arg-type]


def test_forward_auth_needs_its_own_port() -> None:
    with pytest.raises(ValueError, match="forward_auth_port must differ from bind_port"):
        HubSection(bind_port=9000, forward_auth_port=9000)


def test_web_apps_can_have_the_prefix_stripped() -> None:
    config = render_route(route(strip_prefix=True), hub_url="http://hub:8081", entrypoint="web")["http"]
    assert config["middlewares"]["user-bob-2esmith-strip"] == {"stripPrefix": {"prefixes": ["/user/bob.smith"]}}
    assert config["routers"]["user-bob-2esmith"]["middlewares"][-1] == "user-bob-2esmith-strip"


@pytest.mark.parametrize("prefix", ["/user/a`) || PathPrefix(`/", "/hub/", "/user/alice"])
def test_a_prefix_that_could_break_the_rule_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        render_route(route(prefix=prefix), hub_url="http://hub", entrypoint="web")


def test_the_hub_route_catches_everything_else_at_lowest_priority() -> None:
    router = render_hub_route(hub_url="http://127.0.0.1:8081", entrypoint="web")["http"]["routers"]["hub"]
    assert router["priority"] == 1 and router["rule"] == "PathPrefix(`/`)"


def test_files_are_written_whole_and_read_back_identical(tmp_path: Path) -> None:
    config = render_route(route(target="http://a:1/#'q'\"x\""), hub_url="http://hub", entrypoint="web")
    text = dump_checked(config)
    target = tmp_path / "dynamic" / "user-bob.yaml"
    target.parent.mkdir()
    atomic_write(target, text, tmp_path / "dynamic.tmp")
    assert yaml.safe_load(target.read_text()) == config
    assert list((tmp_path / "dynamic.tmp").iterdir()) == []
    assert [p.name for p in target.parent.iterdir()] == ["user-bob.yaml"]
