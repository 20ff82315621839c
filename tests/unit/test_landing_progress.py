"""Results as they land: while an order lands, its GET lists every verified file (``delivery: success``, with
a link) and the rest of the delivery as ``delivery: pending``; the order stays ``running`` until all of it is
in place. Progress is written in batches, not once per file."""

from __future__ import annotations

from typing import Any

import pytest
from landing_fakes import Fault
from order_core.errors import ResultVerificationFailed
from order_core.models.order import LandedFile, OrderRecord
from order_core.models.planet import OrderState
from order_core.services.links import DownloadLinks
from order_core.services.orders import order_view
from test_landing_service import (  # noqa: F401 - the fixture applies here
    ORDER,
    UPSTREAM,
    Rig,
    finalize,
    no_sleeping,
    some_files,
)

API = "https://gateway.example.com/v1"


def view(record: OrderRecord) -> dict[str, Any]:
    return order_view(
        record, API, DownloadLinks("a-signing-key-of-at-least-32-bytes!!") if record.results else None
    )


def deliveries(record: OrderRecord) -> dict[str, str]:
    return {r["name"].split("/", 1)[1]: r["delivery"] for r in view(record)["_links"].get("results", [])}


def test_order_lists_landed_files_and_the_rest_as_pending_while_it_is_still_running() -> None:
    files = some_files(8)
    rig = Rig(files, file_workers=1)

    progress = rig.land(seconds_left=rig.out_of_time_after(2))

    assert not progress.complete
    record = rig.repo.record
    landed = {item.path for item in record.results}
    assert landed and set(record.pending_results) == set(files) - landed
    assert record.state == OrderState.running
    shown = deliveries(record)
    assert shown == {**dict.fromkeys(landed, "success"), **dict.fromkeys(set(files) - landed, "pending")}
    for result in view(record)["_links"]["results"]:
        assert ("location" in result) == (result["delivery"] == "success")

    assert rig.land().complete

    record = rig.repo.record
    assert record.pending_results == []
    assert set(deliveries(record).values()) == {"success"}
    assert set(deliveries(record)) == {*files, "manifest.json"}


def test_order_lists_the_whole_delivery_as_pending_as_soon_as_landing_starts() -> None:
    files = some_files(4)
    rig = Rig(files, file_workers=1)

    rig.land(seconds_left=lambda: 0.0)  # out of time before the first file

    record = rig.repo.record
    assert record.results == []
    assert deliveries(record) == dict.fromkeys(files, "pending")
    assert "results" not in view(record.model_copy(update={"pending_results": []}))["_links"]


def test_landing_progress_is_written_in_batches_not_once_per_file() -> None:
    files = some_files(40, size=1024)
    rig = Rig(files)

    assert rig.land().complete

    writes = [changes for changes in rig.repo.updates if "results" in changes]
    # The first write (all pending), then one every SAVE_INTERVAL_SECONDS, then the last (all landed).
    assert 2 <= len(writes) < len(files) // 4
    assert writes[0]["results"] == [] and len(writes[0]["pending_results"]) == len(files)
    assert writes[-1]["pending_results"] == []


def test_failed_landing_leaves_no_file_pending() -> None:
    files = some_files(4)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault("corrupt", "item_2_", times=99))

    with pytest.raises(ResultVerificationFailed):
        rig.land()

    record = rig.repo.record
    assert record.pending_results == []
    assert "item_2_" not in " ".join(deliveries(record))


def test_order_view_without_pending_files_shows_landed_results_while_running() -> None:
    record = OrderRecord(
        order_id=ORDER,
        tenant="acme",
        name="an order",
        request={"name": "an order"},
        state=OrderState.running,
        upstream_order_id=UPSTREAM,
        results=[LandedFile(path="a.tif", key="k/a.tif", size=1, md5="0" * 32, sha256="0" * 64)],
    )

    assert deliveries(record) == {"a.tif": "success"}


def test_order_ending_while_files_were_pending_lists_none_as_pending() -> None:
    # Landing killed (the task timed out) and the workflow finalizes the order as failed.
    files = some_files(6)
    rig = Rig(files, file_workers=1)
    rig.land(seconds_left=rig.out_of_time_after(2))
    assert rig.repo.record.pending_results

    state, _event = finalize(rig, upstream_state="success", error={"Error": "States.Timeout", "Cause": ""})

    record = rig.repo.record
    assert state == OrderState.failed and record.pending_results == []
    assert "pending" not in set(deliveries(record).values())
