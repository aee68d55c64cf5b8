"""The production-request review as a state machine: every allowed (state, action) pair, and nothing else.

    submitted ──request_changes──▶ changes_requested ──resubmit──▶ resubmitted
        │  ▲                                                          │
        │  └────────────────────── request_changes ◀──────────────────┘
        ├──approve──▶ approved          (also from resubmitted)
        └──reject───▶ rejected          (also from resubmitted)

Reviewers (staff with `apps:review`) take `request_changes`, `approve` and `reject`; the developer takes
`resubmit`. Approved and rejected are final: after a rejection the developer may open a new request. Asking
for changes and rejecting need a message, so that the developer always learns why.
"""

from __future__ import annotations

from enum import StrEnum

from openpayer.portal.errors import InvalidTransition


class State(StrEnum):
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class Action(StrEnum):
    REQUEST_CHANGES = "request_changes"
    RESUBMIT = "resubmit"
    APPROVE = "approve"
    REJECT = "reject"


class Actor(StrEnum):
    DEVELOPER = "developer"
    STAFF = "staff"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.SUBMITTED, Action.REQUEST_CHANGES): State.CHANGES_REQUESTED,
    (State.SUBMITTED, Action.APPROVE): State.APPROVED,
    (State.SUBMITTED, Action.REJECT): State.REJECTED,
    (State.CHANGES_REQUESTED, Action.RESUBMIT): State.RESUBMITTED,
    (State.RESUBMITTED, Action.REQUEST_CHANGES): State.CHANGES_REQUESTED,
    (State.RESUBMITTED, Action.APPROVE): State.APPROVED,
    (State.RESUBMITTED, Action.REJECT): State.REJECTED,
}

ACTORS: dict[Action, Actor] = {
    Action.REQUEST_CHANGES: Actor.STAFF,
    Action.APPROVE: Actor.STAFF,
    Action.REJECT: Actor.STAFF,
    Action.RESUBMIT: Actor.DEVELOPER,
}

NEEDS_MESSAGE = frozenset({Action.REQUEST_CHANGES, Action.REJECT})
OPEN = frozenset({State.SUBMITTED, State.CHANGES_REQUESTED, State.RESUBMITTED})
AWAITING_REVIEW = frozenset({State.SUBMITTED, State.RESUBMITTED})  # the reviewers' queue
FINAL = frozenset({State.APPROVED, State.REJECTED})


def next_state(state: State | str, action: Action | str, actor: Actor | str, message: str = "") -> State:
    """The state after `action`, or `InvalidTransition` saying why it is not allowed now."""
    current, act, who = State(state), Action(action), Actor(actor)
    if ACTORS[act] != who:
        raise InvalidTransition(f"only {ACTORS[act].value} may {act.value.replace('_', ' ')}")
    target = TRANSITIONS.get((current, act))
    if target is None:
        raise InvalidTransition(f"a request that is {current.value.replace('_', ' ')} cannot be {_past(act)}")
    if act in NEEDS_MESSAGE and not message.strip():
        raise InvalidTransition(f"{act.value.replace('_', ' ')} needs a message to the developer")
    return target


def _past(action: Action) -> str:
    return {
        Action.REQUEST_CHANGES: "sent back for changes",
        Action.RESUBMIT: "resubmitted",
        Action.APPROVE: "approved",
        Action.REJECT: "rejected",
    }[action]
