"""Integration states against botocore's own enums, and the shape of the state machine."""

from __future__ import annotations

from collections import deque

import botocore.session
import pytest

from zetl_nb.core.states import (
    DELETABLE,
    MODIFIABLE,
    TRANSITIONS,
    IntegrationState,
    can_transition,
)

S = IntegrationState
LIVE = [s for s in S if s is not S.DELETED]


def _enum(service: str) -> list[str]:
    model = botocore.session.get_session().get_service_model(service)
    return list(model.shape_for("IntegrationStatus").enum)


@pytest.fixture(scope="module")
def rds_enum() -> list[str]:
    return _enum("rds")


@pytest.fixture(scope="module")
def glue_enum() -> list[str]:
    return _enum("glue")


@pytest.mark.parametrize("state", LIVE, ids=str)
def test_rds_spelling_is_in_botocores_rds_enum(state: S, rds_enum: list[str]) -> None:
    assert state.rds == state.rds.lower()
    assert state.rds in rds_enum


@pytest.mark.parametrize("state", LIVE, ids=str)
def test_glue_spelling_is_in_botocores_glue_enum(state: S, glue_enum: list[str]) -> None:
    assert state.value in glue_enum


def test_we_know_every_state_botocore_knows(rds_enum: list[str], glue_enum: list[str]) -> None:
    assert {s.rds for s in LIVE} == set(rds_enum)
    assert {s.value for s in LIVE} == set(glue_enum)


def test_deleted_is_ours(rds_enum: list[str], glue_enum: list[str]) -> None:
    assert S.DELETED.rds == "deleted"
    assert S.DELETED.rds not in rds_enum
    assert S.DELETED.value.upper() not in glue_enum


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(S)
    for targets in TRANSITIONS.values():
        assert targets <= set(S)


def test_no_state_transitions_to_itself() -> None:
    for state, targets in TRANSITIONS.items():
        assert state not in targets, state


def test_deleted_is_terminal() -> None:
    assert TRANSITIONS[S.DELETED] == frozenset()
    for state in S:
        assert not can_transition(S.DELETED, state)


def test_deleting_only_goes_to_deleted() -> None:
    assert TRANSITIONS[S.DELETING] == frozenset({S.DELETED})
    for state in S:
        assert can_transition(S.DELETING, state) is (state is S.DELETED)


def test_only_deleting_reaches_deleted() -> None:
    assert [s for s in S if can_transition(s, S.DELETED)] == [S.DELETING]


def test_deletable_states_can_start_deleting() -> None:
    assert S.DELETING not in DELETABLE and S.DELETED not in DELETABLE
    for state in DELETABLE:
        assert can_transition(state, S.DELETING), state


def test_no_modify_while_creating_or_deleting() -> None:
    assert set(LIVE) >= MODIFIABLE
    assert not MODIFIABLE & {S.CREATING, S.DELETING, S.DELETED}


def test_every_live_state_can_eventually_be_deleted() -> None:
    for start in LIVE:
        seen = {start}
        queue = deque([start])
        while queue:
            for nxt in TRANSITIONS[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        assert S.DELETED in seen, start


def test_states_are_strings_with_glue_spelling() -> None:
    assert S.NEEDS_ATTENTION == "NEEDS_ATTENTION"
    assert S.NEEDS_ATTENTION.rds == "needs_attention"
    assert S("ACTIVE") is S.ACTIVE
