"""Configuration: the documented example loads, mistakes name their key, the hub refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from hub.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "hub.example.yaml"
MINIMAL = {"images": [{"name": "lab", "image": "example/lab:1"}]}


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.images[0].name == "jupyterlab"
    assert settings.default_image_name == "jupyterlab"


def keys_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0] if name == "images" else annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= keys_of(inner, f"{prefix}{name}.")
    return keys


def test_every_setting_is_documented_in_the_example() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())

    def documented(data: Any, prefix: str = "") -> set[str]:
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return documented(data[0], prefix)
        if not isinstance(data, dict):
            return set()
        found = set()
        for key, value in data.items():
            found.add(prefix + key)
            if key not in ("environment", "extra_labels", "options"):
                found |= documented(value, f"{prefix}{key}.")
        return found

    missing = keys_of(Settings) - documented(example)
    assert not missing, f"settings missing from hub.example.yaml: {sorted(missing)}"


@pytest.mark.parametrize(
    "change, key, problem",
    [
        ({"hub": {"bind_port": "eighty"}}, "hub.bind_port", "valid integer"),
        ({"hub": {"bind_prot": 80}}, "hub.bind_prot", "is not a known setting"),
        ({"images": []}, "images", "at least 1 item"),
        ({"images": [{"name": "Lab!", "image": "x"}]}, "images.0.name", "should match pattern"),
        ({"images": [{"name": "lab"}]}, "images.0.image", "is required"),
        ({"images": [{"name": "lab", "image": "x", "user": "root"}]}, "images.0.user", "must not run as root"),
        ({"spawner": {"pull_policy": "sometimes"}}, "spawner.pull_policy", "'ifnotpresent', 'always' or 'never'"),
        ({"default_image": "nope"}, "default_image", "is not one of the images"),
        ({"auth": {"type": "dummy"}}, "auth.dummy_password", "needs a shared password"),
    ],
)
def test_a_mistake_names_the_key_and_the_problem(
    tmp_path: Path, change: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, {**MINIMAL, **change}))
    message = str(raised.value)
    assert f"{key}: " in message
    assert problem in message


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_AUTH__DUMMY_PASSWORD", "from-the-environment")
    monkeypatch.setenv("HUB_HUB__BIND_PORT", "9999")
    settings = load_settings(write(tmp_path, {**MINIMAL, "auth": {"type": "dummy"}, "hub": {"bind_port": 1}}))
    assert settings.auth.dummy_password is not None
    assert settings.auth.dummy_password.get_secret_value() == "from-the-environment"
    assert settings.hub.bind_port == 9999


def test_a_missing_or_broken_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("images: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken)


def test_the_hub_refuses_to_start_with_a_wrong_config(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "spawner": {"start_timeout": -1}})
    result = subprocess.run(
        [sys.executable, "-m", "hub", "--config", str(path), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "spawner.start_timeout: Input should be greater than 0" in result.stderr
    assert "Running on" not in result.stderr


def test_check_config_reports_a_good_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub", "--config", str(write(tmp_path, MINIMAL)), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "configuration OK" in result.stdout


@pytest.mark.parametrize(
    "spawner, expected",
    [
        ({"registry": "registry.example.org"}, "set HUB_REGISTRY_USER and HUB_REGISTRY_PASSWORD"),
        ({"registry_config": "missing/config.json"}, "is not a file"),
    ],
    ids=["registry without credentials", "registry config missing"],
)
def test_check_config_reports_missing_registry_credentials(
    tmp_path: Path, spawner: dict[str, str], expected: str
) -> None:
    """What would stop ``hub serve`` stops ``hub check-config`` first, in the same words."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_REGISTRY_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub",
            "--config",
            str(write(tmp_path, {**MINIMAL, "spawner": spawner})),
            "check-config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr
    assert "configuration OK" not in result.stdout
