"""The command line: users are added without a password on the command line, listed and removed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def hub_cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_users_are_added_listed_and_removed(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"hub": {"data_dir": str(tmp_path / "data")}, "images": [{"name": "lab", "image": "x:1"}]})
    )
    added = hub_cli(config, "user", "add", "Alice", "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0, added.stderr
    assert "user alice saved" in added.stdout
    assert hub_cli(config, "user", "add", "root", "--admin", stdin="another password\n").returncode == 0
    short = hub_cli(config, "user", "add", "bob", stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    odd = hub_cli(config, "user", "add", "../bob", stdin="a long password\n")
    assert odd.returncode == 1 and "cannot be used as a user name" in odd.stderr

    listing = hub_cli(config, "user", "list").stdout.splitlines()
    assert listing == ["alice\tuser\tno server\tnative", "root\tadmin\tno server\tnative"]
    assert hub_cli(config, "user", "remove", "alice").returncode == 0
    assert hub_cli(config, "user", "list").stdout.splitlines() == ["root\tadmin\tno server\tnative"]
    missing = hub_cli(config, "user", "remove", "alice")
    assert missing.returncode == 1 and "there is no user alice" in missing.stderr


def test_the_password_is_not_accepted_as_an_argument(tmp_path: Path) -> None:
    result = hub_cli(tmp_path / "hub.yaml", "user", "add", "alice", "--password", "secret")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_tokens_for_services_are_made_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"hub": {"data_dir": str(tmp_path / "data")}, "images": [{"name": "lab", "image": "x:1"}]})
    )
    missing = hub_cli(config, "token", "create", "culler")
    assert missing.returncode == 1 and "There is no user culler" in missing.stderr
    made = hub_cli(config, "token", "create", "culler", "--service", "--admin", "--note", "idle culler")
    assert made.returncode == 0, made.stderr
    assert len(made.stdout.strip()) > 30
    assert "culler\tadmin\tno server\tnative" in hub_cli(config, "user", "list").stdout


def test_an_account_moves_to_another_login_method(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    methods = [{"type": "native"}, {"type": "pam", "name": "campus"}]
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp_path / "data")},
                "auth": {"methods": methods},
                "images": [{"name": "lab", "image": "x:1"}],
            }
        )
    )
    assert hub_cli(config, "user", "add", "alice", stdin="a long password\n").returncode == 0
    assert hub_cli(config, "user", "add", "bob", "--method", "campus").returncode == 0
    assert hub_cli(config, "user", "list").stdout.splitlines() == [
        "alice\tuser\tno server\tnative",
        "bob\tuser\tno server\tcampus",
    ]
    moved = hub_cli(config, "user", "method", "alice", "campus")
    assert moved.returncode == 0 and "alice now logs in with campus" in moved.stdout
    assert "alice\tuser\tno server\tcampus" in hub_cli(config, "user", "list").stdout
    unknown = hub_cli(config, "user", "method", "alice", "github")
    assert unknown.returncode == 1 and "there is no login method 'github'" in unknown.stderr
