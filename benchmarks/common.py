"""Helpers the benchmarks share: a hub of ours behind its own Traefik, with the demo password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.hub import HubProcess, hub_config
from tests.fixtures.traefik import free_port, start_traefik

BENCH_PASSWORD = "bench-pass"


def our_hub(
    workdir: Path,
    prefix: str,
    image: str,
    lifecycle: dict[str, Any] | None = None,
    spawner: dict[str, Any] | None = None,
    images: list[dict[str, Any]] | None = None,
    password: str = BENCH_PASSWORD,
) -> HubProcess:
    """Our hub (not started yet) with one image "jupyterlab", the dummy login (BENCH_PASSWORD) and its own
    Traefik (started). Docker objects carry ``prefix`` in their names and labels; stop both processes after.
    ``spawner`` adds to (or overrides) the spawner section, e.g. ``{"backend": "swarm", "network": ...}``;
    ``images`` replaces the one image, ``password`` the dummy login's password."""
    port = free_port()
    traefik = start_traefik(workdir / "traefik", fast_lane=f"http://127.0.0.1:{port}")
    config = hub_config(
        port=port,
        traefik=traefik,
        data_dir=workdir / "data",
        prefix=prefix,
        run_prefix=prefix,
        images=images or [{"name": "jupyterlab", "image": image}],
        auth={"type": "dummy", "dummy_password": password},
    )
    if lifecycle is not None:
        config["lifecycle"] = lifecycle
    config["spawner"].update(spawner or {})
    (workdir / "hub.yaml").write_text(yaml.safe_dump(config))
    return HubProcess(
        traefik.web_url, f"http://127.0.0.1:{port}", workdir / "hub.yaml", workdir / "hub.log", prefix, traefik
    )
