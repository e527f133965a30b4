"""Resident memory of an idle hub process (after start-up and one login), and the CPU an idle hub and its
Traefik use (Traefik polls the hub's fast lane; the hub holds a poll with nothing new, hub/fast_lane.py).

Measured twice: at the first start, which creates the database (Alembic runs its revisions and stays
loaded), and at the next start on the same data, the usual case (the schema is up to date, Alembic is
never loaded). Then two floors that no change to the hub's own code can go below: a Python that imports the
web server, state and configuration libraries (CORE_LIBRARIES) and does nothing else, and one that imports every
library an idle hub has loaded (FLOOR_LIBRARIES).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
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

CORE_LIBRARIES = (
    "aiohttp.web",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.sqlite.aiosqlite",  # the dialect an engine loads when it is made
    "pydantic.main",  # ``import pydantic`` alone defers BaseModel
)
"""The web server, the state (SQLAlchemy's asyncio ORM on SQLite) and the configuration's models."""
FLOOR_LIBRARIES = (
    *CORE_LIBRARIES,
    "aiohttp_jinja2",  # pages
    "aiohttp_session.cookie_storage",  # sessions, encrypted with cryptography's Fernet
    "cryptography.fernet",
    "pydantic_settings",  # the configuration's environment variables
    "docker",  # the spawner
    "yaml",  # Traefik's files
    "argon2",  # passwords
    "prometheus_client",  # metrics
    "httptools",  # forward auth's listener
)
"""Every library an idle hub has loaded (uvloop too, when installed: the hub then runs on it)."""


def library_floor(libraries: tuple[str, ...]) -> dict[str, float]:
    """Memory of a Python that has imported these libraries and nothing else."""
    code = (
        f"import sys\nfor name in {libraries!r}:\n    __import__(name)\nprint('ready', flush=True)\nsys.stdin.read()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline() if process.stdout is not None else ""
        if ready.strip() != "ready":
            raise RuntimeError(f"importing {', '.join(libraries)} failed (exit code {process.wait(10)})")
        return memory_mb(process.pid)
    finally:
        try:
            process.communicate("", timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    with_uvloop = ("uvloop",) if importlib.util.find_spec("uvloop") else ()
    for what, libraries in (
        ("the web server, state and configuration's libraries alone", CORE_LIBRARIES),
        ("every library an idle hub has loaded, alone", FLOOR_LIBRARIES + with_uvloop),
    ):
        floor = library_floor(libraries)
        private = floor["Private_Clean"] + floor["Private_Dirty"]
        print(
            f"{what} ({', '.join(libraries)}): Rss {floor['Rss']:.1f} MB, Pss {floor['Pss']:.1f} MB, "
            f"private {private:.1f} MB"
        )


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
