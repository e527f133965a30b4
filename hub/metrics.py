"""Prometheus metrics (prometheus-client), one registry per hub.

prometheus-client is loaded, and the metrics made, at the first count or the first scrape: a hub whose
metrics nobody reads and that has not yet started a server or checked a request does not hold it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class _Metrics:
    registry: CollectorRegistry
    users: Gauge
    running_servers: Gauge
    spawn_duration: Histogram
    spawn_failures: Counter
    forward_auth: Counter


def _make() -> _Metrics:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return _Metrics(
        registry=registry,
        users=Gauge("hub_users", "Users known to the hub", registry=registry),
        running_servers=Gauge("hub_running_servers", "Servers that are running", registry=registry),
        spawn_duration=Histogram(
            "hub_spawn_duration_seconds",
            "Time from start request until the route to the server is live",
            buckets=(0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300),
            registry=registry,
        ),
        spawn_failures=Counter("hub_spawn_failures", "Server starts that failed", registry=registry),
        forward_auth=Counter(
            "hub_forward_auth_requests", "Forward-auth checks by result", ["result"], registry=registry
        ),
    )


class HubMetrics:
    @functools.cached_property
    def _metrics(self) -> _Metrics:
        return _make()

    @property
    def registry(self) -> CollectorRegistry:
        return self._metrics.registry

    @property
    def users(self) -> Gauge:
        return self._metrics.users

    @property
    def running_servers(self) -> Gauge:
        return self._metrics.running_servers

    @property
    def spawn_duration(self) -> Histogram:
        return self._metrics.spawn_duration

    @property
    def spawn_failures(self) -> Counter:
        return self._metrics.spawn_failures

    @property
    def forward_auth(self) -> Counter:
        return self._metrics.forward_auth

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
