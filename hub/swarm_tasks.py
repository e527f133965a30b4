"""What a Swarm task's record says, in the hub's words: its state, error, exit code and container, the progress
message for each state, and "no node has room" for the person starting (hub/swarm_spawner.py)."""

from __future__ import annotations

from typing import Any

from hub.i18n import N_

TASK_PROGRESS = {
    "new": (40, N_("Waiting for the cluster to place your server")),
    "pending": (40, N_("Waiting for the cluster to place your server")),
    "assigned": (45, N_("Your server was placed on node %(node)s")),
    "accepted": (45, N_("Your server was placed on node %(node)s")),
    "preparing": (50, N_("Preparing your server on node %(node)s (fetching the image if needed)")),
    "ready": (55, N_("Starting your container")),
    "starting": (55, N_("Starting your container")),
    "running": (60, N_("Waiting for your server to answer")),
}
ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
UNSCHEDULABLE = ("no suitable node", "insufficient resources")


def latest_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest task of a one-replica service (older ones are history)."""
    if not tasks:
        return None
    return max(tasks, key=lambda task: (task.get("Version") or {}).get("Index", 0))


def task_state(task: dict[str, Any] | None) -> str:
    return str(((task or {}).get("Status") or {}).get("State") or "new")


def task_error(task: dict[str, Any] | None) -> str:
    status = (task or {}).get("Status") or {}
    return str(status.get("Err") or status.get("Message") or "")


def task_exit_code(task: dict[str, Any] | None) -> int | None:
    code = (((task or {}).get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
    return code if isinstance(code, int) else None


def task_container_id(task: dict[str, Any] | None) -> str:
    return str((((task or {}).get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID") or "")


def unschedulable_message(error: str) -> str:
    """Swarm's "no suitable node (insufficient resources on 3 nodes)" in words for the person starting."""
    if "insufficient resources" in error:
        return N_(
            "No machine in the cluster has enough free memory or CPUs for your server right now. "
            "Please choose fewer resources, or try again when others have stopped their servers."
        )
    return N_("No machine in the cluster can run your server right now. Please tell an admin.")
