"""Prometheus metrics (prometheus-client), one registry per hub."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.users = Gauge("hub_users", "Users known to the hub", registry=self.registry)
        self.running_servers = Gauge("hub_running_servers", "Servers that are running", registry=self.registry)
        self.spawn_duration = Histogram(
            "hub_spawn_duration_seconds",
            "Time from start request until the route to the server is live",
            buckets=(0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300),
            registry=self.registry,
        )
        self.spawn_failures = Counter("hub_spawn_failures", "Server starts that failed", registry=self.registry)
        self.forward_auth = Counter(
            "hub_forward_auth_requests", "Forward-auth checks by result", ["result"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
