"""The order lifecycle (models/lifecycle.py): one table of moves, one derivation of Planet's state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import ROOT
from order_core.models.lifecycle import (
    AT_PLANET,
    BEFORE_PLANET,
    TRANSITIONS,
    Phase,
    guard,
    may_replace,
    phase_after_poll,
    planet_state,
    replaceable_by,
)
from order_core.models.planet import OrderState


def test_lifecycle_every_phase_has_its_moves_and_finalized_has_none() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert TRANSITIONS[Phase.FINALIZED] == frozenset()
    assert BEFORE_PLANET.isdisjoint(AT_PLANET)


def test_lifecycle_every_phase_can_end_finalized() -> None:
    # Every accepted order ends in exactly one terminal state: no phase is a dead end.
    for phase in Phase:
        reachable, todo = {phase}, [phase]
        while todo:
            for target in TRANSITIONS[todo.pop()] - reachable:
                reachable.add(target)
                todo.append(target)
        assert Phase.FINALIZED in reachable


def test_lifecycle_once_planet_has_the_order_it_never_goes_back_before_planet() -> None:
    for phase in AT_PLANET:
        assert TRANSITIONS[phase].isdisjoint(BEFORE_PLANET)


def test_lifecycle_guard_refuses_a_move_the_table_does_not_allow() -> None:
    with pytest.raises(ValueError, match="cannot move"):
        guard({Phase.DELIVERING}, Phase.SUBMITTED)


@pytest.mark.parametrize(
    ("phase", "upstream", "final", "shown"),
    [
        (Phase.ACCEPTED, None, None, OrderState.queued),
        (Phase.SUBMITTING, None, None, OrderState.queued),
        (Phase.SUBMITTED, "queued", None, OrderState.queued),
        (Phase.SUBMITTED, "running", None, OrderState.running),
        (Phase.SUBMITTED, "failed", None, OrderState.running),  # Planet is done; we are not yet
        (Phase.SUBMITTED, "cancelled", None, OrderState.queued),  # Planet cancels only queued orders
        (Phase.DELIVERING, "success", None, OrderState.running),  # landing: not final for our clients
        (Phase.FINALIZED, "success", OrderState.success, OrderState.success),
        (Phase.FINALIZED, None, OrderState.cancelled, OrderState.cancelled),
    ],
)
def test_planet_state_derived_from_phase_and_upstream_state(
    phase: Phase, upstream: str | None, final: OrderState | None, shown: OrderState
) -> None:
    assert planet_state(phase, upstream, final) is shown


def test_planet_state_finalized_without_a_final_state_is_a_bug() -> None:
    with pytest.raises(ValueError):
        planet_state(Phase.FINALIZED, "running", OrderState.running)


def test_phase_after_poll_delivered_moves_to_delivering_else_stays() -> None:
    assert phase_after_poll(Phase.SUBMITTED, OrderState.success) is Phase.DELIVERING
    assert phase_after_poll(Phase.SUBMITTED, OrderState.partial) is Phase.DELIVERING
    assert phase_after_poll(Phase.SUBMITTED, OrderState.failed) is Phase.SUBMITTED
    assert phase_after_poll(Phase.DELIVERING, OrderState.running) is Phase.DELIVERING


def _choices(states: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for state in states.values() if state["Type"] == "Choice" for rule in state["Choices"]]


def test_workflow_choices_route_every_final_planet_state_by_its_name() -> None:
    definition = json.loads((ROOT / "statemachine" / "order_workflow.asl.json").read_text())
    routed = {
        rule["StringEquals"]
        for rule in _choices(definition["States"])
        if rule.get("Variable") == "$.poll.upstream_state" and "StringEquals" in rule
    }

    assert routed <= {state.value for state in OrderState}
    assert {state.value for state in OrderState if state.is_final} <= routed


def test_workflow_lands_exactly_the_states_the_lifecycle_delivers() -> None:
    definition = json.loads((ROOT / "statemachine" / "order_workflow.asl.json").read_text())
    landed = {
        rule["StringEquals"]
        for rule in _choices(definition["States"])
        if rule.get("Next") == "LandResults" and "StringEquals" in rule
    }

    delivered = {s.value for s in OrderState if phase_after_poll(Phase.SUBMITTED, s) is Phase.DELIVERING}
    assert landed == delivered


@pytest.mark.parametrize(
    ("recorded", "reported", "allowed"),
    [
        (None, OrderState.running, True),
        ("queued", OrderState.queued, True),
        ("queued", OrderState.cancelled, True),
        ("running", OrderState.queued, False),
        ("running", OrderState.success, True),
        ("success", OrderState.running, False),
        ("success", OrderState.success, True),
        ("success", OrderState.failed, False),
        ("cancelled", OrderState.queued, False),
    ],
)
def test_planet_state_reports_only_move_an_order_forward(
    recorded: str | None, reported: OrderState, allowed: bool
) -> None:
    assert may_replace(recorded, reported) is allowed
    assert (recorded in replaceable_by(reported)) is allowed or recorded is None
