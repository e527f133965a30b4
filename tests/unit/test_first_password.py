"""First passwords of imported accounts (hub/roster_import.py) for every minimum length the configuration allows."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("min_length", [1, 8, 16, 100, 769, 1000, 1024])  # auth.min_password_length: 1 to 1024
def test_a_first_password_is_made_for_any_allowed_minimum_length(min_length: int) -> None:
    """A minimum near the 1024-character ceiling once made the import loop for ever on the hub's event loop
    (``token_urlsafe(n)`` gives about 4n/3 characters, which went past the ceiling): every page hung."""
    code = (
        "from hub.roster_import import first_password\n"
        f"p = first_password({min_length})\n"
        "print(len(p), p.startswith('-'))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no first password was made for a minimum of {min_length} characters within 30 s")
    length, dash = done.stdout.split()
    assert max(16, min_length) <= int(length) <= 1024
    assert dash == "False"
