"""A bulk action's outcome travels in the session cookie: many failures are counted, not all listed."""

from __future__ import annotations

from hub.bulk import MAX_NAMED, BulkOutcome


def test_many_failures_are_counted_so_the_message_stays_small() -> None:
    outcome = BulkOutcome(failed=[(f"student{number}", "Docker is not reachable right now.") for number in range(80)])
    message = outcome.message("Stopped the servers of %(names)s.")
    assert f"And {80 - MAX_NAMED} more failed" in message
    assert "student79" not in message and len(message) < 1000
