"""The metrics the dashboard and alarms watch are emitted where they happen: Planet's 429s, 5xx and refused
keys (one per answer), and what a landing attempt gave up on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from order_core.adapters.planet_client import PlanetClient
from order_core.errors import UpstreamError
from order_core.observability import metrics

BASE = "https://api.planet.test/compute/ops"
ORDER_ID = "98d124c3-0857-49f5-aa1b-2250c6f907ed"


def _emitted() -> dict[str, float]:
    """Metric name -> sum of the values added since the last flush (as CloudWatch would sum them)."""
    document = metrics.serialize_metric_set()
    return {
        definition["Name"]: sum(v) if isinstance(v := document[definition["Name"]], list) else v
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.mark.parametrize(
    ("status", "metric"),
    [
        (429, "UpstreamThrottled"),
        (500, "UpstreamServerErrors"),
        (503, "UpstreamServerErrors"),
        (401, "UpstreamAuthErrors"),
        (403, "UpstreamAuthErrors"),
    ],
)
def test_planet_client_error_status_emits_its_metric_once(status: int, metric: str) -> None:
    with responses.RequestsMock() as mocked:
        mocked.get(f"{BASE}/orders/v2/{ORDER_ID}", status=status, json={"message": "no"})
        with pytest.raises(UpstreamError):
            PlanetClient(BASE, "PLAK-unit-test-0123456789abcdef").get_order(ORDER_ID)

    assert _emitted() == {metric: 1}


def test_planet_client_other_client_error_emits_no_upstream_metric() -> None:
    with responses.RequestsMock() as mocked:
        mocked.get(f"{BASE}/orders/v2/{ORDER_ID}", status=404, json={"message": "gone"})
        with pytest.raises(UpstreamError):
            PlanetClient(BASE, "PLAK-unit-test-0123456789abcdef").get_order(ORDER_ID)

    assert metrics.metric_set == {}


@pytest.fixture
def landing_rig(monkeypatch: pytest.MonkeyPatch) -> type:
    from order_core.services import landing as landing_module
    from order_core.services import transfer as transfer_module
    from test_landing_service import Rig

    monkeypatch.setattr(transfer_module.time, "sleep", lambda _s: None)
    monkeypatch.setattr(landing_module.time, "sleep", lambda _s: None)
    return Rig


def test_landing_emits_the_bytes_and_files_it_landed(landing_rig: type) -> None:
    from landing_fakes import content

    files = {f"PSScene/item_{i}_3B_AnalyticMS.tif": content(1000 + i, seed=i) for i in range(3)}

    landing_rig(files).land()

    emitted = _emitted()
    assert (emitted["LandedBytes"], emitted["LandedFiles"]) == (3003, 3)
    assert "LandingErrors" not in emitted


def test_landing_giving_up_on_a_file_emits_a_landing_error(landing_rig: type) -> None:
    from landing_fakes import Fault, content
    from order_core.errors import ResultVerificationFailed

    files = {f"PSScene/item_{i}_3B_AnalyticMS.tif": content(1000, seed=i) for i in range(3)}
    rig = landing_rig(files)
    rig.planet_files.faults.append(Fault("corrupt", "PSScene/item_1_3B_AnalyticMS.tif", times=100))

    with pytest.raises(ResultVerificationFailed):
        rig.land()

    emitted = _emitted()
    assert emitted["LandingErrors"] == 1
    assert "LandedBytes" not in emitted
