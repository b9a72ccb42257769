"""Integration states and the transitions AWS allows between them.

Glue spells states in upper case (``NEEDS_ATTENTION``), RDS in lower case (``needs_attention``):
one state machine, two faces. A deleted integration disappears from Describe calls; its last state
is kept in the history as ``deleted``.
"""

from __future__ import annotations

from enum import StrEnum


class IntegrationState(StrEnum):
    """AWS's integration states (Glue's spelling)."""

    CREATING = "CREATING"
    ACTIVE = "ACTIVE"
    MODIFYING = "MODIFYING"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    SYNCING = "SYNCING"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "deleted"

    @property
    def rds(self) -> str:
        """RDS's spelling of the state (``needs_attention``)."""
        return self.value.lower()


S = IntegrationState

#: Every transition the engine may make. Anything else is a bug, not a user error.
TRANSITIONS: dict[IntegrationState, frozenset[IntegrationState]] = {
    S.CREATING: frozenset({S.ACTIVE, S.NEEDS_ATTENTION, S.FAILED, S.DELETING}),
    S.ACTIVE: frozenset({S.MODIFYING, S.NEEDS_ATTENTION, S.SYNCING, S.FAILED, S.DELETING}),
    S.MODIFYING: frozenset({S.ACTIVE, S.NEEDS_ATTENTION, S.FAILED, S.DELETING}),
    S.NEEDS_ATTENTION: frozenset({S.ACTIVE, S.MODIFYING, S.SYNCING, S.FAILED, S.DELETING}),
    S.SYNCING: frozenset({S.ACTIVE, S.NEEDS_ATTENTION, S.FAILED, S.DELETING}),
    S.FAILED: frozenset({S.DELETING, S.ACTIVE, S.NEEDS_ATTENTION}),
    S.DELETING: frozenset({S.DELETED}),
    S.DELETED: frozenset(),
}

#: States in which ModifyIntegration is accepted (others: InvalidIntegrationStateFault).
MODIFIABLE = frozenset({S.ACTIVE, S.NEEDS_ATTENTION, S.FAILED})

#: States in which DeleteIntegration is accepted.
DELETABLE = frozenset({S.CREATING, S.ACTIVE, S.NEEDS_ATTENTION, S.FAILED, S.SYNCING, S.MODIFYING})


def can_transition(old: IntegrationState, new: IntegrationState) -> bool:
    """Whether the state machine allows ``old`` → ``new``."""
    return new in TRANSITIONS[old]
