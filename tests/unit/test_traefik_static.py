"""The request hardening of Traefik is the same in every static configuration we ship and test with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.traefik import WEB_HTTP_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
STATIC_CONFIGS = [ROOT / "traefik" / "traefik.yml", ROOT / "traefik" / "compose.yml"]


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": True}} -> {"a.b": "true"}, values spelled as Traefik's flags spell them."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


@pytest.mark.parametrize("path", STATIC_CONFIGS, ids=lambda path: path.name)
def test_static_configs_harden_requests_as_the_tests_do(path: Path) -> None:
    entry_points = yaml.safe_load(path.read_text())["entryPoints"]
    assert flatten(entry_points["web"]["http"]) == WEB_HTTP_OPTIONS
    assert entry_points["traefik"]["http"]["aliasHeadersStrategy"] == "delete"


def test_the_traefik_binary_knows_every_option() -> None:
    """A misspelt option stops Traefik at start; the help lists every static option of this version."""
    binary = Path(sys.executable).parent / "traefik"
    help_text = subprocess.run(
        [str(binary), "--help"], check=False, capture_output=True, text=True, timeout=30
    ).stdout.lower()
    for key in WEB_HTTP_OPTIONS:
        assert f"--entrypoints.<name>.http.{key.lower()} " in help_text, key
