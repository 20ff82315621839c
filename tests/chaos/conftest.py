"""One local stack for the chaos suite, every scenario run concurrently on it, the table printed at the end.

The stack keeps Planet's timeline short but leaves an order queued at Planet long enough to cancel it
(20 s: enough for a patient client under load, when other scenarios' 429s hold every cancel of the
deployment), submits at most 3 times, polls for at most 90 s and turns the fake's own rate limits off: the
faults are the ones the scenarios inject, nothing else.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # stack_process, shared with e2e

from chaos_runner import Chaos, Outcome, judge, secret_leaks, stray_objects
from chaos_scenarios import FULL, selected
from gateway_local.readiness import RunningStack
from stack_process import running_stack

PLANET_KEY = f"PLAK-chaos-{secrets.token_hex(8)}"
API_KEY = f"pgw_chaos_{secrets.token_urlsafe(18)}"
CHAOS_ENV = {
    "FAKE_PLANET_QUEUED_SECONDS": "20",
    "FAKE_PLANET_RUNNING_SECONDS": "1",
    "FAKE_PLANET_FILE_SIZE": "16384",
    "FAKE_PLANET_RATE_LIMITS": "false",
    "DOWNLOAD_REQUESTS_PER_SECOND": "0",
    "SUBMIT_MAX_ATTEMPTS": "4",
    "POLL_DEADLINE_SECONDS": "90",
    "PLANET_API_KEY": PLANET_KEY,
    "LOCAL_API_KEY": API_KEY,
}
MAX_AT_ONCE = 64
_RESULTS: dict[str, Any] = {}


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("chaos-stack"), **CHAOS_ENV) as stack:
        yield stack


@pytest.fixture(scope="session")
def chaos_run(chaos_stack: RunningStack) -> dict[str, Any]:
    """Every selected scenario, run at once (each faults only its own order), then judged."""
    chaos = Chaos(chaos_stack)
    chaos.warm_up()
    order = [s.name for s in selected()]
    # The longest first, so they overlap with the rest; a bounded pool keeps 2 cores responsive.
    scenarios = sorted(selected(), key=lambda s: -s.timeout)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(len(scenarios), MAX_AT_ONCE)) as pool:
        outcomes: list[Outcome] = list(pool.map(chaos.run, scenarios))
    outcomes.sort(key=lambda o: order.index(o.scenario.name))
    time.sleep(5)  # a duplicate completion event would arrive by now
    planted = [PLANET_KEY, API_KEY]
    for outcome in outcomes:
        judge(chaos, outcome, planted)
    chaos.events.stop()
    chaos.dead_letters.stop()
    _RESULTS.update(
        outcomes={o.scenario.name: o for o in outcomes},
        stray=stray_objects(chaos),
        leaks=secret_leaks(chaos, planted, banner_shows=API_KEY),
        seconds=time.monotonic() - started,
        full=FULL,
    )
    return _RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    mode = "full matrix" if _RESULTS["full"] else "subset (CHAOS_FULL=1 for the full matrix)"
    terminalreporter.section(
        f"chaos: {len(_RESULTS['outcomes'])} scenarios, {mode}, {_RESULTS['seconds']:.0f} s"
    )
    write(f"{'scenario':34} {'expect':14} {'got':16} {'fired':>5} {'secs':>5}  verdict")
    for name, outcome in _RESULTS["outcomes"].items():
        verdict = "ok" if not outcome.violations else "VIOLATED: " + "; ".join(outcome.violations)
        if outcome.notes:
            verdict += " (" + "; ".join(outcome.notes) + ")"
        fired = str(outcome.faults_fired) if outcome.scenario.rules else "-"
        write(
            f"{name:34} {outcome.scenario.expect:14} {outcome.state[:16]:16} {fired:>5} "
            f"{outcome.seconds:5.0f}  {verdict[:220]}"
        )
    stray = _RESULTS["stray"]
    verdict = "ok" if not stray else f"VIOLATED: {stray[:3]}"
    write(f"{'writes outside {prefix}/{tenant}/{order id}/':60} {verdict}")
    for where in ("log", "events", "workflow inputs", "API responses"):
        found = _RESULTS["leaks"].get(where, [])
        verdict = "ok" if not found else f"VIOLATED: {len(found)} lines, e.g. {found[0]!r}"
        write(f"{'no secret in ' + where:60} {verdict[:200]}")
