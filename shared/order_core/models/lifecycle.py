"""An order's lifecycle in one place: its phases, the moves allowed between them, and the one function that
says which Planet ``state`` a client sees in each.

The phases are the gateway's own, finer than Planet's states: a record is in exactly one of them. Flags
(``rejected``, ``cancel_requested``) say why an order that never reached Planet will end, and
``event_published_at`` that its completion event was claimed; they do not add phases. The order store
(``order_core.ports.OrderStore``) refuses any write that would leave this table.
"""

from __future__ import annotations

from enum import StrEnum

from order_core.models.planet import OrderState


class Phase(StrEnum):
    """Where the gateway is with an order, finer than Planet's ``state``."""

    ACCEPTED = "accepted"  # recorded and queued; not yet sent to Planet (or refused/cancelled before it)
    SUBMITTING = "submitting"  # write-ahead: a POST to Planet may be in flight
    SUBMITTED = "submitted"  # Planet has it; the workflow polls it
    DELIVERING = "delivering"  # Planet finished; results are being landed in S3
    FINALIZED = "finalized"  # terminal state recorded (the completion event claimed)


#: Every move a write may make, the phase to itself included (a retried claim, another poll).
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    # submitted for the first time; refused or cancelled before Planet saw it, then finalized
    Phase.ACCEPTED: frozenset({Phase.ACCEPTED, Phase.SUBMITTING, Phase.FINALIZED}),
    # an ambiguous POST retried (reconciled first); Planet has it; Planet refused it (back to accepted,
    # rejected); or finalized as it stands
    Phase.SUBMITTING: frozenset({Phase.SUBMITTING, Phase.SUBMITTED, Phase.ACCEPTED, Phase.FINALIZED}),
    Phase.SUBMITTED: frozenset({Phase.SUBMITTED, Phase.DELIVERING, Phase.FINALIZED}),
    Phase.DELIVERING: frozenset({Phase.DELIVERING, Phase.FINALIZED}),
    Phase.FINALIZED: frozenset(),
}

#: Phases a client's cancel is handled by the gateway alone (no POST has been answered yet).
BEFORE_PLANET = frozenset({Phase.ACCEPTED, Phase.SUBMITTING})
#: Phases in which Planet has the order and polls are recorded.
AT_PLANET = frozenset({Phase.SUBMITTED, Phase.DELIVERING})

#: Planet's final states, as recorded (``upstream_state``): nothing changes after them.
FINAL_UPSTREAM = frozenset(state.value for state in OrderState if state.is_final)
_UPSTREAM_STATES = frozenset(state.value for state in OrderState)
#: Planet's states that are not final: the orders stats count, and the sparse ``active`` index holds.
ACTIVE_STATES = frozenset({OrderState.queued, OrderState.running})
#: Upstream states meaning Planet has started the order: a client sees it ``running`` until finalized.
_STARTED_UPSTREAM = frozenset({OrderState.running, OrderState.success, OrderState.partial, OrderState.failed})


def may_replace(recorded: str | None, reported: OrderState) -> bool:
    """True when a report of Planet's state (a poll's GET, a sweep's list) may replace the recorded one.

    Planet's states only move forward: queued, running, then one final state (a queued order may also end at
    once). A report read before the recorded one (a sweep's page listed while the order ran, written after a
    GET saw it delivered) must not take the order back: the landing reads the recorded state.
    """
    if recorded is None or recorded not in _UPSTREAM_STATES:
        return True
    before = OrderState(recorded)
    if before.is_final:
        return reported is before
    return reported is before or reported.is_final or (before is OrderState.queued)


def replaceable_by(reported: OrderState) -> tuple[str, ...]:
    """The recorded states a report of ``reported`` may replace (stores turn it into a guard)."""
    return tuple(sorted(state.value for state in OrderState if may_replace(state.value, reported)))


def can_move(current: Phase, target: Phase) -> bool:
    return target in TRANSITIONS[current]


def phase_after_poll(current: Phase, upstream_state: OrderState) -> Phase:
    """A poll moves a followed order to ``delivering`` once Planet delivered it (success or partial)."""
    if current is Phase.SUBMITTED and upstream_state in (OrderState.success, OrderState.partial):
        return Phase.DELIVERING
    return current


def planet_state(
    phase: Phase, upstream_state: str | None, final_state: OrderState | None = None
) -> OrderState:
    """The state Planet's API shows for an order: the only place it is derived.

    ``queued`` until Planet starts the order; ``running`` while Planet runs it and while its files land (a
    Planet ``success`` is not final for our clients until every file is landed and the event is out);
    terminal (``final_state``) only once finalized. A Planet ``cancelled`` before finalizing is still
    ``queued`` (Planet cancels only queued orders); a Planet ``failed`` is ``running`` (it had started).
    """
    if phase is Phase.FINALIZED:
        if final_state is None or not final_state.is_final:
            raise ValueError("a finalized order needs a final state")
        return final_state
    if phase is Phase.DELIVERING:
        return OrderState.running
    if upstream_state is not None and upstream_state in _STARTED_UPSTREAM:
        return OrderState.running
    return OrderState.queued


def guard(sources: frozenset[Phase] | set[Phase], target: Phase) -> tuple[Phase, ...]:
    """The phases a write to ``target`` may start from, checked against ``TRANSITIONS`` (stores build their
    guards with it, so a guard that allows a move the table does not fails at import, not in production)."""
    wrong = [phase for phase in sources if not can_move(phase, target)]
    if wrong:
        raise ValueError(f"{sorted(wrong)} cannot move to {target}")
    return tuple(sorted(sources))
