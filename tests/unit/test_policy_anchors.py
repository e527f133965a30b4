"""The socket proxy's patterns end at the end of the text: Python's ``$`` also matches before a final newline,
which a percent-encoded path (``%0A``) or a JSON string can carry."""

from __future__ import annotations

import json

import pytest

from hub.docker_policy import VOLUME_NAME, Refused, decide
from hub.swarm_policy import NODE_CONSTRAINT


@pytest.mark.parametrize("path", ["/_ping\n", "/v1.41/_ping\n", "/version\n", "/containers/json\n"])
def test_a_path_with_a_trailing_newline_is_refused(path: str) -> None:
    with pytest.raises(Refused):
        decide("GET", path, {})


def test_the_same_paths_without_it_pass() -> None:
    for path in ("/_ping", "/v1.41/_ping", "/version"):
        decide("GET", path, {})


def test_names_and_constraints_with_a_trailing_newline_do_not_match() -> None:
    assert VOLUME_NAME.match("hub-alice") and not VOLUME_NAME.match("hub-alice\n")
    assert NODE_CONSTRAINT.match("node.id==" + "a" * 25) and not NODE_CONSTRAINT.match("node.id==" + "a" * 25 + "\n")


def container(host: dict[str, object], **more: object) -> bytes:
    return json.dumps({"Image": "x", "Labels": {"hub.managed": "true"}, "HostConfig": host, **more}).encode()


def test_a_new_container_names_the_networks_it_joins_for_the_proxy_to_check() -> None:
    made = decide("POST", "/containers/create", {}, container({"NetworkMode": "hub-users"}))
    assert made.networks == ("hub-users",)
    sdk = container({"NetworkMode": "hub-users"}, NetworkingConfig={"hub-users": None})  # what the docker SDK sends
    assert decide("POST", "/containers/create", {}, sdk).networks == ("hub-users",)
    helper = container({"NetworkMode": "default"}, NetworkDisabled=True)  # a backup helper: no network at all
    assert decide("POST", "/containers/create", {}, helper).networks == ()
    with pytest.raises(Refused, match="default bridge"):
        decide("POST", "/containers/create", {}, container({"NetworkMode": "default"}))
    aliased = container(
        {"NetworkMode": "hub-users"}, NetworkingConfig={"EndpointsConfig": {"their-net": {"Aliases": ["db"]}}}
    )
    with pytest.raises(Refused, match="aliases"):
        decide("POST", "/containers/create", {}, aliased)
