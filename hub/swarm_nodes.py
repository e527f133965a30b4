"""When a Swarm node goes away: which servers went with it (hub/swarm_spawner.py asks here).

A worker that stops answering its manager's heartbeats is marked ``down`` (about 15 seconds with Docker's
defaults). Swarm then gives up the node's tasks (their desired state becomes ``shutdown``; a server's restart
policy is ``none``, so no new task is made) but cannot learn what became of them: their last known state stays
``running``, and the hub would show the server running for ever. A server is lost when the node of its newest
task is ``down`` or no longer in the Swarm, or when Swarm marked the task ``orphaned`` (a node down for long).
Swarm itself gives up tasks only on ``down`` nodes: ``disconnected`` (a worker looking for a new manager) and
``unknown`` (for a moment after the managers chose a new leader) are passing states whose servers keep running,
so they are waited for; a node that does not come back is marked ``down`` soon after.

The check costs one ``GET /nodes/{id}`` per node that runs servers, per reconcile pass (not per server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.i18n import L_, Text

GONE_NODE_STATES = frozenset({"down"})
"""Node states (``Status.State``) whose tasks Swarm has given up (as Swarm's orchestrator decides: not
``disconnected`` or ``unknown``, which pass)."""
GIVEN_UP_TASK_STATES = frozenset({"orphaned"})
"""Task states Swarm sets when the task's node went away."""
EXITED_TASK_STATES = frozenset({"complete", "failed"})
"""Task states that, with an exit code, mean the container ended on its own (a crash, not a lost node)."""


def node_hostname(node_id: str, node: Mapping[str, Any] | None) -> str:
    """The node's hostname for people, else the start of its ID."""
    return str(((node or {}).get("Description") or {}).get("Hostname") or node_id[:12])


def lost_node(task: Mapping[str, Any] | None, nodes: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """The name of the node the task's server was lost with, or None when it was not lost that way.

    ``nodes`` maps a node's ID to what ``GET /nodes/{id}`` answered, or to None when the Swarm no longer knows that
    node (404); a node missing from the map was not asked and decides nothing. A task whose container exited
    (with an exit code) ended on its own: that is a crash, not a lost node."""
    if not task:
        return None
    status = task.get("Status") or {}
    state = str(status.get("State") or "")
    exited = (status.get("ContainerStatus") or {}).get("ExitCode")
    if state in EXITED_TASK_STATES and isinstance(exited, int):
        return None
    node_id = str(task.get("NodeID") or "")
    if not node_id:
        return None  # never placed: not a node's doing
    node = nodes.get(node_id)
    if state in GIVEN_UP_TASK_STATES:
        return node_hostname(node_id, node)
    if node_id not in nodes:
        return None
    if node is None:
        return node_id[:12]  # removed from the Swarm (docker node rm)
    if str((node.get("Status") or {}).get("State") or "") in GONE_NODE_STATES:
        return node_hostname(node_id, node)
    return None


def lost_message(node: str, files_on_node: bool) -> Text:
    """What the person reads: their server is gone with its machine, and whether starting again works now."""
    if files_on_node:  # local volumes: the next start is pinned to that node (hub/swarm_placement.py)
        return L_(
            "The machine your server ran on stopped answering (node %(node)s). Your files are on that machine: "
            "start your server again when it is back, or ask an admin to let it start on another machine "
            "(without those files).",
            node=node,
        )
    return L_(
        "The machine your server ran on stopped answering (node %(node)s). Start it again to run it elsewhere.",
        node=node,
    )


__all__ = ["GONE_NODE_STATES", "lost_message", "lost_node", "node_hostname"]
