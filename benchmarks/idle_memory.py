"""Resident memory of an idle hub process (after start-up and one login)."""

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
    traefik = start_traefik(workdir / "traefik")
    port = free_port()
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
    hub.start()
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(f"{hub.url}/hub/login").read().decode()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        form = urllib.parse.urlencode({"_xsrf": xsrf, "username": "alice", "password": "bench-pass"}).encode()
        opener.open(f"{hub.url}/hub/login", data=form).read()
        time.sleep(2)
        assert hub.process is not None
        memory = memory_mb(hub.process.pid)
        private = memory["Private_Clean"] + memory["Private_Dirty"]
        print(f"idle hub memory: Rss {memory['Rss']:.1f} MB, Pss {memory['Pss']:.1f} MB, private {private:.1f} MB")
    finally:
        hub.stop()
        traefik.stop()


if __name__ == "__main__":
    main()
