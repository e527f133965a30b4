"""Fixtures for the whole suite.

- fixtures/docker.py   run_prefix, docker_client (fails without a daemon), base_image, jupyterlab_image, r_image,
                       labelled clean-up of everything a run made, container logs on failure
- fixtures/traefik.py  traefik: a real Traefik process on free loopback ports with its own dynamic dir
- fixtures/hub.py      hub_factory / hub: a real `python -m hub serve` behind that Traefik
- fixtures/browser.py  browser_context: Debian's Chromium driven by Playwright
- fixtures/postgres.py postgres_url: a real PostgreSQL server started for the run
- fixtures/oidc_provider.py oidc_provider: a real OpenID provider (npm's oidc-provider on Node)
- fixtures/slapd.py    slapd: a real OpenLDAP server (people, groups, a service account) started for the run
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.docker",
    "tests.fixtures.traefik",
    "tests.fixtures.hub",
    "tests.fixtures.browser",
    "tests.fixtures.axe",
    "tests.fixtures.postgres",
    "tests.fixtures.oidc_provider",
    "tests.fixtures.slapd",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed
