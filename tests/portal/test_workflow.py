"""The review state machine: every allowed transition, and a refusal for everything else."""

from __future__ import annotations

import itertools

import pytest

from openpayer.portal.errors import InvalidTransition
from openpayer.portal.workflow import TRANSITIONS, Action, Actor, State, next_state

ALLOWED = {
    (State.SUBMITTED, Action.REQUEST_CHANGES): State.CHANGES_REQUESTED,
    (State.SUBMITTED, Action.APPROVE): State.APPROVED,
    (State.SUBMITTED, Action.REJECT): State.REJECTED,
    (State.CHANGES_REQUESTED, Action.RESUBMIT): State.RESUBMITTED,
    (State.RESUBMITTED, Action.REQUEST_CHANGES): State.CHANGES_REQUESTED,
    (State.RESUBMITTED, Action.APPROVE): State.APPROVED,
    (State.RESUBMITTED, Action.REJECT): State.REJECTED,
}
WHO = {
    Action.REQUEST_CHANGES: Actor.STAFF,
    Action.APPROVE: Actor.STAFF,
    Action.REJECT: Actor.STAFF,
    Action.RESUBMIT: Actor.DEVELOPER,
}


def test_the_table_is_exactly_the_documented_machine() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_pair_is_allowed_or_refused(state: State, action: Action) -> None:
    if (state, action) in ALLOWED:
        assert next_state(state, action, WHO[action], "a reason") == ALLOWED[(state, action)]
    else:
        with pytest.raises(InvalidTransition, match="cannot be"):
            next_state(state, action, WHO[action], "a reason")


def test_final_states_accept_nothing() -> None:
    for state in (State.APPROVED, State.REJECTED):
        for action in Action:
            with pytest.raises(InvalidTransition):
                next_state(state, action, WHO[action], "x")


def test_only_the_right_party_acts() -> None:
    with pytest.raises(InvalidTransition, match="only staff"):
        next_state(State.SUBMITTED, Action.APPROVE, Actor.DEVELOPER)
    with pytest.raises(InvalidTransition, match="only developer"):
        next_state(State.CHANGES_REQUESTED, Action.RESUBMIT, Actor.STAFF)


def test_asking_for_changes_and_rejecting_need_a_message() -> None:
    for action in (Action.REQUEST_CHANGES, Action.REJECT):
        with pytest.raises(InvalidTransition, match="needs a message"):
            next_state(State.SUBMITTED, action, Actor.STAFF, "   ")
    assert next_state(State.SUBMITTED, Action.APPROVE, Actor.STAFF, "") is State.APPROVED
