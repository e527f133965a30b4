"""What a hub loads when it starts: libraries that only some configurations use wait until they are used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOADED_WHEN_USED = {
    "docker": "by the Docker spawner, when the hub makes it",
    "alembic": "when the database needs a revision (hub/migrate.py)",
    "ldap3": "by an LDAP login method",
    "jwt": "by an OIDC login method",
    "pamela": "by a PAM login method",
    "prometheus_client": "at the first count or scrape of the metrics",
}


def loaded_after(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_importing_the_hub_loads_no_library_that_only_some_configurations_use() -> None:
    loaded = loaded_after("import hub.cli, hub.app")
    assert sorted(set(LOADED_WHEN_USED) & loaded) == []


def test_the_metrics_load_prometheus_client_at_first_use_and_show_every_metric() -> None:
    loaded = loaded_after(
        "from hub.metrics import HubMetrics\n"
        "metrics = HubMetrics()\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "text = metrics.render().decode()\n"
        "for name in ('hub_users', 'hub_running_servers', 'hub_spawn_duration_seconds_count',\n"
        "             'hub_spawn_failures_total', 'hub_forward_auth_requests'):\n"
        "    assert name in text, name"
    )
    assert "prometheus_client" in loaded
