"""Each chaos scenario's invariants, and the run's global ones (conftest.py runs them all at once)."""

from __future__ import annotations

from typing import Any

import pytest
from chaos_scenarios import Scenario, selected


@pytest.mark.parametrize("scenario", selected(), ids=lambda s: s.name)
def test_chaos_scenario_keeps_every_invariant(chaos_run: dict[str, Any], scenario: Scenario) -> None:
    outcome = chaos_run["outcomes"][scenario.name]

    assert not outcome.violations, (
        f"{scenario.name} -> {outcome.state} {outcome.hints[:2]}; our API answered {outcome.responses[-8:]}"
    )


def test_chaos_run_writes_only_under_each_orders_folder(chaos_run: dict[str, Any]) -> None:
    assert chaos_run["stray"] == []


@pytest.mark.parametrize("where", ["log", "events", "workflow inputs", "API responses"])
def test_chaos_run_shows_no_secret(chaos_run: dict[str, Any], where: str) -> None:
    assert chaos_run["leaks"].get(where, []) == []
