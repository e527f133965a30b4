"""The admin panel and the users API with 5,000 users: time per page (filter, sort, deep pages)."""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.hub import HubProcess, hub_config
from tests.fixtures.traefik import free_port, start_traefik

USERS = 5000


def timed(http: requests.Session, url: str, rounds: int = 20) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        response = http.get(url, timeout=60)
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples) * 1000, max(samples) * 1000


def main() -> None:
    workdir = Path(tempfile.mkdtemp())
    traefik = start_traefik(workdir / "traefik")
    port = free_port()
    config = hub_config(
        port=port,
        traefik=traefik,
        data_dir=workdir / "data",
        prefix="benchadm",
        run_prefix="benchadm",
        images=[{"name": "x", "image": "x"}],
        auth={"type": "dummy", "dummy_password": "bench-pass", "admin_users": ["boss"]},
    )
    (workdir / "hub.yaml").write_text(yaml.safe_dump(config))
    hub = HubProcess(
        traefik.web_url, f"http://127.0.0.1:{port}", workdir / "hub.yaml", workdir / "hub.log", "benchadm", traefik
    )
    hub.start()
    try:
        http = requests.Session()
        page = http.get(f"{hub.url}/hub/login", timeout=30).text
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        http.post(
            f"{hub.url}/hub/login", data={"_xsrf": xsrf, "username": "boss", "password": "bench-pass"}, timeout=30
        )
        token = hub.token("boss")
        names = [f"learner{number:05d}" for number in range(USERS)]
        for start in range(0, USERS, 500):
            created = http.post(
                f"{hub.url}/hub/api/users",
                json={"usernames": names[start : start + 500]},
                headers={"Authorization": f"token {token}"},
                timeout=120,
            )
            assert created.status_code == 201
        for label, path in [
            ("admin panel, page 1", "/hub/admin"),
            ("admin panel, page 80", "/hub/admin?page=80"),
            ("admin panel, sorted by last activity, desc", "/hub/admin?sort=last_activity&order=desc"),
            ("admin panel, filtered", "/hub/admin?filter=learner0421"),
        ]:
            median, worst = timed(http, hub.url + path)
            print(f"{label} ({USERS} users): median {median:.1f} ms, max {worst:.1f} ms")
        api = requests.Session()
        api.headers.update({"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"})
        median, worst = timed(api, f"{hub.url}/hub/api/users?offset=4000&limit=200")
        print(f"API page of 200 at offset 4000: median {median:.1f} ms, max {worst:.1f} ms")
    finally:
        hub.stop()
        traefik.stop()


if __name__ == "__main__":
    main()
