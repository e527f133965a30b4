"""The pieces of sharing that need no hub: the relay's signed tickets and the routers of a route file."""

from __future__ import annotations

from hub.proxy import Route
from hub.share_relay import Ticket, TicketSigner
from hub.traefik import render_route, route_priorities


def test_a_ticket_verifies_only_as_signed_by_this_hub_and_only_until_it_runs_out() -> None:
    signer = TicketSigner(lifetime=30)
    ticket = signer.issue(Ticket("bob", "alice", "lab"), now=1000)
    assert signer.verify(ticket, now=1010) == Ticket("bob", "alice", "lab")
    assert signer.verify(ticket, now=1031) is None
    assert TicketSigner().verify(ticket, now=1010) is None  # another hub process's key
    assert signer.verify(ticket.replace("bob|", "carol|", 1), now=1010) is None
    assert signer.verify(ticket.replace("|lab|", "||", 1), now=1010) is None
    for junk in (None, "", "bob|alice||2000", "x" * 1000, ticket + "|extra"):
        assert signer.verify(junk, now=1010) is None


def test_an_unshared_server_costs_traefik_one_router_one_middleware_one_service() -> None:
    route = Route("alice", "alice----lab", "/user/alice/lab/", "http://10.0.0.2:8888", server_name="lab")
    config = render_route(route, hub_url="http://hub:8081", entrypoint="web")["http"]
    rid = "user-alice----lab"
    assert set(config["routers"]) == {rid}
    assert set(config["middlewares"]) == {f"{rid}-auth"}
    assert set(config["services"]) == {rid}
    assert (
        config["middlewares"][f"{rid}-auth"]["forwardAuth"]["address"] == "http://hub:8081/hub/forward-auth/alice/lab"
    )


def test_websockets_of_a_shared_server_have_their_own_routers_above_its_http_router() -> None:
    route = Route("alice", "alice----lab", "/user/alice/lab/", "http://10.0.0.2:8888", server_name="lab", shared=True)
    config = render_route(route, hub_url="http://hub:8081", entrypoint="web")["http"]
    rid = "user-alice----lab"
    routers = config["routers"]
    assert set(routers) == {rid, f"{rid}-ws", f"{rid}-share"}
    assert routers[rid]["priority"] < routers[f"{rid}-ws"]["priority"] < routers[f"{rid}-share"]["priority"]
    assert "HeaderRegexp(`Upgrade`" in routers[f"{rid}-ws"]["rule"]
    assert "hubshare=1" in routers[f"{rid}-share"]["rule"]
    assert routers[f"{rid}-ws"]["service"] == rid
    assert routers[f"{rid}-share"]["service"] == f"{rid}-relay"
    assert config["services"][f"{rid}-relay"]["loadBalancer"]["servers"] == [{"url": "http://hub:8081"}]
    middlewares = config["middlewares"]
    assert middlewares[f"{rid}-auth-ws"]["forwardAuth"]["address"] == "http://hub:8081/hub/forward-auth-ws/alice/lab"
    share_auth = middlewares[f"{rid}-auth-share"]["forwardAuth"]
    assert share_auth["address"] == "http://hub:8081/hub/forward-auth-share/alice/lab"
    assert share_auth["authResponseHeaders"] == ["X-Share-Ticket"]  # never the server's token to the hub's relay
    assert middlewares[f"{rid}-relay"] == {"addPrefix": {"prefix": "/hub/share-relay"}}


def test_a_longer_prefix_always_outranks_a_shorter_one() -> None:
    default, named = route_priorities("/user/alice/"), route_priorities("/user/alice/lab/")
    assert max(default) < min(named)
    assert min(default) > 1  # above the hub's catch-all
