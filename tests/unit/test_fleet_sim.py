"""The fleet simulation (``benchmarks/fleet.py --quick``): what a user of the new tracking would notice.

100 orders on one key, today's design and DESIGN12's side by side, in virtual time (no test here depends on
how fast the machine is). ``make bench-fleet`` runs the same code at 100, 1,000 and 10,000 orders.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 100


def _load_fleet() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_bench", ROOT / "benchmarks" / "fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fleet = _load_fleet()


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    config = fleet.setup()
    return {design: fleet.simulate(design, ORDERS, hold_hours=0, config=config) for design in fleet.DESIGNS}


def test_fleet_new_design_no_429_and_fewer_gets_than_today(runs: dict[str, Any]) -> None:
    today = runs["today"]
    assert today.rejected > 0  # the simulated Planet does refuse what exceeds its limits
    for design in ("new", "new, webhooks lost"):
        new = runs[design]
        assert new.rejected == 0, design
        assert new.gets / new.created < today.gets / today.created / 10, design
    assert runs["new"].gets / runs["new"].created <= 3


def test_fleet_every_order_followed_to_one_end_and_detected(runs: dict[str, Any]) -> None:
    for design, result in runs.items():
        assert result.created == ORDERS, design
        assert len(result.transitions) == ORDERS, design  # every order reached Done exactly once
        assert len(result.latencies) == ORDERS, design  # every final upstream state was seen by a GET
        assert result.undetected == result.failed_by_deadline == 0, design
    for design in ("new", "new, webhooks lost"):
        assert runs[design].failed_by_429 == 0, design


def test_fleet_lost_webhooks_detection_bounded_by_sweep_interval_and_pacing(runs: dict[str, Any]) -> None:
    config = fleet.setup()
    pacer = fleet.Pacer(fleet.InMemoryPaceStore())
    pages = math.ceil(ORDERS / fleet.PAGE_SIZE)
    bound = config.tracking.sweep_interval_seconds + fleet.MAX_WAIT + pages * pacer.interval("list")
    lost = runs["new, webhooks lost"]
    assert max(lost.latencies) <= bound
    assert lost.percentile(0.5) > runs["new"].percentile(0.5)  # webhooks do wake orders sooner


def test_fleet_long_orders_cost_a_fraction_of_todays_transitions(runs: dict[str, Any]) -> None:
    today, new = runs["today"], runs["new"]
    assert new.long_transitions and today.long_transitions
    assert fleet.mean(new.long_transitions) <= fleet.mean(today.long_transitions) / 5


def test_workflow_today_cycle_read_from_the_asl_is_three_states() -> None:
    workflow = fleet.setup().workflow
    assert workflow.wait_states + workflow.poll_states == 3  # WaitBeforePoll, PollUpstream, Route...


@pytest.mark.parametrize(
    ("state", "change"),
    [
        ("WaitBeforePoll", lambda s: s.update({"Next": "Finalize"})),
        ("RouteOnUpstreamState", lambda s: s.update({"Default": "Finalize"})),
        ("LandResults", lambda s: s.update({"Retry": []})),
    ],
)
def test_workflow_drifted_asl_refused(state: str, change: Any) -> None:
    asl = json.loads(fleet.ASL.read_text(encoding="utf-8"))
    drifted = copy.deepcopy(asl)
    change(drifted["States"][state])
    with pytest.raises(fleet.AslDrift):
        fleet.Workflow(drifted)


def _design12_asl() -> dict[str, Any]:
    """The repo's ASL rewired as DESIGN12 fixes it (WaitForChange between RouteOnUpstreamState's default
    and PollUpstream), whichever of the two is in the tree."""
    asl = json.loads(fleet.ASL.read_text(encoding="utf-8"))
    states = asl["States"]
    states["SubmittedUpstream"]["Default"] = "WaitForChange"
    states["WaitForChange"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.wake", "Next": "PollUpstream"}],
        "Next": "PollUpstream",
    }
    route = states["RouteOnUpstreamState"]
    route["Default"] = "WaitForChange"
    route["Choices"] = [
        *[c for c in route["Choices"] if c["Next"] != "WaitBeforePoll"],
        {"Variable": "$.poll.retry", "BooleanEquals": True, "Next": "WaitBeforePoll"},
    ]
    return asl


def test_workflow_design12_cycle_read_from_the_asl() -> None:
    workflow = fleet.Workflow(_design12_asl())
    assert workflow.notes == []  # nothing taken from DESIGN12's text: all of it from the ASL
    assert workflow.wait_states + workflow.poll_states == 3  # WaitForChange, PollUpstream, Route...


def test_workflow_without_wait_for_change_and_not_todays_refused() -> None:
    asl = _design12_asl()
    del asl["States"]["WaitForChange"]
    asl["States"]["SubmittedUpstream"]["Default"] = "WaitBeforePoll"
    with pytest.raises(fleet.AslDrift):
        fleet.Workflow(asl)
