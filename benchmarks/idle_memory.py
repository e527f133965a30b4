"""Resident memory of an idle hub process (after start-up and one login), and the CPU an idle hub and its
Traefik use (Traefik polls the hub's fast lane; the hub holds a poll with nothing new, hub/fast_lane.py).

Measured twice: at the first start, which creates the database (Alembic runs its revisions and stays
loaded), and at the next start on the same data, the usual case (the schema is up to date, Alembic is
never loaded).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.hub import HubProcess, hub_config
from tests.fixtures.traefik import free_port, start_traefik


def memory_mb(pid: int) -> dict[str, float]:
    """Rss counts shared libraries whole; Pss shares them out; Private_* is what the hub alone holds."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    port = free_port()
    traefik = start_traefik(workdir / "traefik", fast_lane=f"http://127.0.0.1:{port}")
    config = hub_config(
        port=port,
        traefik=traefik,
        data_dir=workdir / "data",
        prefix="benchmem",
        run_prefix="benchmem",
        images=[{"name": "x", "image": "x"}],
        auth={"type": "dummy", "dummy_password": "bench-pass"},
    )
    (workdir / "hub.yaml").write_text(yaml.safe_dump(config))
    hub = HubProcess(
        traefik.web_url, f"http://127.0.0.1:{port}", workdir / "hub.yaml", workdir / "hub.log", "benchmem", traefik
    )
    try:
        for when in ("first start (creates the database)", "next start (database up to date)"):
            hub.start()
            try:
                log_in(hub.url)
                time.sleep(2)
                assert hub.process is not None
                memory = memory_mb(hub.process.pid)
                if when.startswith("next"):
                    idle_cpu(hub.process.pid, traefik.process.pid)
            finally:
                hub.stop()
            private = memory["Private_Clean"] + memory["Private_Dirty"]
            print(
                f"idle hub memory, {when}: Rss {memory['Rss']:.1f} MB, Pss {memory['Pss']:.1f} MB, "
                f"private {private:.1f} MB"
            )
    finally:
        traefik.stop()


def idle_cpu(hub_pid: int, traefik_pid: int, seconds: float = 30) -> None:
    from benchmarks.spawn import cpu_seconds

    before = cpu_seconds(hub_pid), cpu_seconds(traefik_pid)
    time.sleep(seconds)
    hub_cpu, traefik_cpu = cpu_seconds(hub_pid) - before[0], cpu_seconds(traefik_pid) - before[1]
    print(f"idle CPU over {seconds:g} s: hub {hub_cpu:.2f} s, Traefik {traefik_cpu:.2f} s")


def log_in(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{url}/hub/login").read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode({"_xsrf": xsrf, "username": "alice", "password": "bench-pass"}).encode()
    opener.open(f"{url}/hub/login", data=form).read()


if __name__ == "__main__":
    main()
