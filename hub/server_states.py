"""The states of a user's server and the only changes between them.

::

    STOPPED ──start──► STARTING ──spawn done──► RUNNING ──stop, cull──► STOPPING ──container gone──► STOPPED
    FAILED ───start──┘    │                      │  ▲                     │  │
       ▲                  └──── mark failed ─────┼──┼─────────────────────┘  │ (a failed start's clean-up)
       └─────────────────────────────────────────┘  └── stop failed: restored┘
    RUNNING  ──record crash, container gone──────────────────────────────────────────────────► STOPPED
    STARTING, STOPPING ──finish interrupted (the hub restarted in between)───────────────────► STOPPED
    FAILED   ──stop (clears the failure; nothing runs)─────────────────────────────────────► STOPPED

A server's state is written only by ``ServerManager``'s named steps (servers.py), and each step
asks ``check`` first, so no caller can move a server along a path not drawn here.
"""

from __future__ import annotations

from hub.models import ServerState

S = ServerState
TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
    S.STARTING: frozenset({S.RUNNING, S.FAILED, S.STOPPED, S.STOPPING}),
    S.RUNNING: frozenset({S.STOPPING, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED, S.RUNNING, S.FAILED}),
}
"""Allowed next states. STARTING -> STOPPING is a stop during a start; STOPPING -> RUNNING restores a
server whose container could not be stopped; STOPPING -> FAILED likewise for a failed start."""


class InvalidTransition(Exception):
    """A step asked for a change the state machine does not allow (a bug, or a race the step must handle)."""


def allowed(current: ServerState, target: ServerState) -> bool:
    return target == current or target in TRANSITIONS[current]


def check(current: ServerState, target: ServerState) -> None:
    if not allowed(current, target):
        raise InvalidTransition(f"a server cannot go from {current.value} to {target.value}")
