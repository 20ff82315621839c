"""One file from Planet into the bucket (``order_core.services.transfer``), against in-memory fakes.

Small files go in one PUT; larger ones in ranged parts, in parallel, hashed in order. What is asserted is
what a user would notice: the object's bytes and metadata, whether anything unverified became visible, which
bytes were fetched again after a failure, a pause or a kill, and how much memory buffers ever held.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from landing_fakes import (
    Bucket,
    FakeDownloader,
    FakeLinks,
    FakePlanetFiles,
    FakeStore,
    Fault,
    Killed,
    content,
    digests,
)
from order_core.adapters import digests as digest_adapter
from order_core.errors import DownloadRefused, LinkExpired, ResultVerificationFailed, UpstreamRateLimited
from order_core.services import transfer as transfer_module
from order_core.services.transfer import Checkpoints, FileToLand, Transfer, TransferLimits

KIB = 1024
PART = 64 * KIB
PATH = "PSScene/scene_3B_AnalyticMS.tif"
KEY = f"orders/acme/o-1/{PATH}"


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(transfer_module.time, "sleep", slept.append)
    return slept


def file_for(data: bytes, path: str = PATH, **overrides: Any) -> FileToLand:
    md5, sha256 = digests(data)
    values = {"path": path, "key": f"orders/acme/o-1/{path}", "size": len(data), "md5": md5, "sha256": sha256}
    values.update(overrides)
    return FileToLand(media_type="image/tiff", link_name=path, **values)


class Rig:
    """A Transfer wired to the fakes; ``fresh()`` is the next invocation (same bucket and Planet)."""

    def __init__(self, files: dict[str, bytes], **limits: Any) -> None:
        self.planet = FakePlanetFiles(files)
        self.bucket = Bucket()
        limits = {"part_bytes": PART, **limits}
        self.limits = TransferLimits(min_part_bytes=1, checkpoint_seconds=0, **limits)
        self.fresh()

    def fresh(self, *, kill_after_parts: int | None = None, part_seconds: float = 0) -> Rig:
        self.store = FakeStore(self.bucket, kill_after_parts=kill_after_parts, part_seconds=part_seconds)
        self.links = FakeLinks(self.planet)
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(4)
        self.transfer = Transfer(
            FakeDownloader(self.planet),  # type: ignore[arg-type]
            self.store,  # type: ignore[arg-type]
            self.links,
            Checkpoints(self.store, "_landing-state/acme/o-1"),  # type: ignore[arg-type]
            self.pool,
            self.stop,
            self.limits,
        )
        return self

    def land(self, file: FileToLand) -> Any:
        try:
            return self.transfer.land(file)
        finally:
            self.pool.shutdown(wait=True)

    def body(self, key: str = KEY) -> bytes | None:
        return self.bucket.bodies.get(key)

    def checkpoints(self) -> list[str]:
        return [k for k in self.bucket.bodies if k.startswith("_landing-state/")]


# --- small files: one GET, one PUT ------------------------------------------------------------------------


def test_small_file_lands_in_one_put_with_digests_as_metadata_and_the_manifest_md5_as_content_md5() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})

    landed = rig.land(file_for(data))

    assert landed.size == len(data)
    assert rig.body() == data
    assert rig.bucket.objects[KEY].metadata == dict(zip(("md5", "sha256"), digests(data), strict=True))
    assert rig.bucket.content_md5[KEY] == digests(data)[0]
    assert "start_upload" not in rig.store.calls


def test_small_file_corrupted_once_is_fetched_again_and_lands() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("corrupt", PATH, times=1, on="storage"))

    rig.land(file_for(data))

    assert rig.body() == data
    assert len(rig.planet.requests) == 2


def test_small_file_always_corrupted_fails_naming_the_file_and_nothing_lands() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("corrupt", PATH, times=100))

    with pytest.raises(ResultVerificationFailed) as failure:
        rig.land(file_for(data))

    message = str(failure.value)
    assert PATH in message and "md5" in message and "sha256" in message and "after 3 attempts" in message
    assert rig.body() is None


def test_small_file_larger_than_the_manifest_says_is_refused() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data + b"extra"})

    with pytest.raises(ResultVerificationFailed, match="size 40965 != manifest 40960"):
        rig.land(file_for(data))

    assert rig.body() is None


def test_small_file_truncated_once_is_fetched_again() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("truncate", PATH, times=1))

    rig.land(file_for(data))

    assert rig.body() == data


# --- large files: ranged parts ----------------------------------------------------------------------------


def test_large_file_is_uploaded_in_parts_fetched_by_range_and_completed_only_once_verified() -> None:
    data = content(10 * PART + 123)
    rig = Rig({PATH: data})

    rig.land(file_for(data))

    assert rig.body() == data
    assert rig.store.calls.count("upload_part") == 11
    ranges = sorted(r for r in rig.planet.ranges_fetched(PATH) if r)
    assert ranges == [(i * PART, min(len(data), (i + 1) * PART) - 1) for i in range(11)]
    # Only the first range goes through Planet's (paced) link; the others straight to storage.
    assert sum(1 for r in rig.planet.requests if r.paced) == 1
    assert rig.checkpoints() == []


def test_large_file_with_one_range_truncated_fetches_only_that_range_again() -> None:
    data = content(8 * PART)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("truncate", PATH, times=1, on="storage"))

    rig.land(file_for(data))

    assert rig.body() == data
    assert len(rig.planet.ranges_fetched(PATH)) == 9  # 8 ranges, one of them twice


def test_large_file_corrupted_once_is_aborted_and_landed_again_from_its_first_byte() -> None:
    data = content(6 * PART)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("corrupt", PATH, times=1, on="storage"))

    rig.land(file_for(data))

    assert rig.body() == data
    assert len(rig.bucket.aborted) == 1  # the unverified upload was dropped, never completed
    assert rig.store.calls.count("complete") == 1


def test_large_file_always_corrupted_fails_and_leaves_no_object_no_upload_no_checkpoint() -> None:
    data = content(6 * PART)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("corrupt", PATH, times=1000, on="storage"))

    with pytest.raises(ResultVerificationFailed, match=r"AnalyticMS\.tif.*md5 [0-9a-f]{32} != manifest"):
        rig.land(file_for(data))

    assert rig.body() is None
    assert rig.bucket.uploads == {} and len(rig.bucket.aborted) == 3
    assert rig.checkpoints() == []


def test_large_file_whose_server_reports_another_size_fails_without_downloading_it_all() -> None:
    data = content(6 * PART)
    rig = Rig({PATH: data})
    rig.planet.reported_size[PATH] = len(data) + 1

    with pytest.raises(ResultVerificationFailed, match=f"size {len(data) + 1} != manifest {len(data)}"):
        rig.land(file_for(data))

    assert rig.body() is None


def test_large_file_from_a_server_ignoring_ranges_is_streamed_in_order_and_lands() -> None:
    data = content(5 * PART + 7)
    rig = Rig({PATH: data})
    rig.planet.ignore_ranges = True

    rig.land(file_for(data))

    assert rig.body() == data
    assert rig.store.calls.count("upload_part") == 6


def test_memory_held_by_buffers_never_exceeds_the_budget_whatever_the_file_size() -> None:
    data = content(40 * PART)
    rig = Rig({PATH: data}, buffer_bytes=3 * PART)

    rig.land(file_for(data))

    assert rig.body() == data
    assert 0 < rig.transfer.budget.peak <= 3 * PART
    assert rig.transfer.budget.used == 0


# --- links ------------------------------------------------------------------------------------------------


def test_expired_link_is_refreshed_and_the_file_lands() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})

    class StaleUntilRefreshed(FakeLinks):
        """The order was fetched a while ago: its link expired until the order is GET again."""

        def location(self, name: str) -> str:
            return self.planet.link(name) if self.refreshes else f"{self.planet.link(name)[:-1]}0"

    rig.links = StaleUntilRefreshed(rig.planet)
    rig.transfer.links = rig.links

    rig.land(file_for(data))

    assert rig.body() == data
    assert rig.links.refreshes == 1


def test_storage_url_expiring_mid_file_sends_the_next_range_back_through_the_link() -> None:
    data = content(8 * PART)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("expire", PATH, times=2, on="storage"))

    rig.land(file_for(data))

    assert rig.body() == data
    assert sum(1 for r in rig.planet.requests if r.paced) >= 2  # re-resolved through Planet's link


def test_link_refused_every_time_fails_with_link_expired_naming_the_file() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("expire", PATH, times=1000))

    with pytest.raises(LinkExpired, match=r"AnalyticMS\.tif could not be landed"):
        rig.land(file_for(data))


def test_rate_limited_download_waits_for_retry_after_and_lands(no_sleeping: list[float]) -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("rate_limited", PATH, times=2, retry_after=3))

    rig.land(file_for(data))

    assert rig.body() == data
    assert no_sleeping.count(3) == 2


def test_refused_download_is_not_retried_and_names_the_file() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data})
    rig.planet.faults.append(Fault("refuse", PATH, times=1))

    with pytest.raises(DownloadRefused, match=r"AnalyticMS\.tif: refusing to connect.*169\.254\.169\.254"):
        rig.land(file_for(data))

    assert len(rig.planet.requests) == 1


def test_rate_limited_beyond_patience_fails_as_rate_limited() -> None:
    data = content(40 * KIB)
    rig = Rig({PATH: data}, rate_limit_waits=2)
    rig.planet.faults.append(Fault("rate_limited", PATH, times=1000, retry_after=1))

    with pytest.raises(UpstreamRateLimited):
        rig.land(file_for(data))


# --- resume -----------------------------------------------------------------------------------------------


def test_stopped_mid_file_keeps_a_checkpoint_and_the_next_invocation_fetches_only_the_rest() -> None:
    data = content(12 * PART)
    rig = Rig({PATH: data})
    original_upload = rig.store.upload_part

    def stop_after_four(*args: Any, **kwargs: Any) -> dict[str, str]:
        receipt = original_upload(*args, **kwargs)
        if rig.store.calls.count("upload_part") >= 4:
            rig.stop.set()  # the invocation is running out of time
        return receipt

    rig.store.upload_part = stop_after_four  # type: ignore[method-assign]

    assert rig.land(file_for(data)) is None
    assert rig.body() is None  # nothing visible yet
    assert len(rig.checkpoints()) == 1
    first = len(rig.planet.ranges_fetched(PATH))

    rig.fresh().land(file_for(data))

    assert rig.body() == data
    fetched_again = len(rig.planet.ranges_fetched(PATH)) - first
    assert fetched_again <= 12 - 4  # parts already committed are not fetched again
    assert rig.checkpoints() == []
    assert rig.store.calls.count("start_upload") == 0  # the same multipart upload continued


def test_killed_mid_file_loses_at_most_the_parts_in_flight() -> None:
    data = content(16 * PART)
    rig = Rig({PATH: data}).fresh(kill_after_parts=9, part_seconds=0.02)

    with pytest.raises(Killed):
        rig.land(file_for(data))
    assert rig.body() is None
    (checkpoint,) = rig.checkpoints()
    kept = len(json.loads(rig.bucket.bodies[checkpoint])["parts"])
    before = len(rig.planet.ranges_fetched(PATH))

    rig.fresh().land(file_for(data))

    assert rig.body() == data
    assert kept >= 9 - 4  # uploaded before the kill, minus at most the 4 ranges in flight
    assert len(rig.planet.ranges_fetched(PATH)) - before == 16 - kept  # only what the checkpoint lacked
    assert rig.bucket.aborted == []


def test_resuming_an_upload_that_was_aborted_meanwhile_starts_the_file_again() -> None:
    data = content(8 * PART)
    rig = Rig({PATH: data}).fresh(kill_after_parts=3)
    with pytest.raises(Killed):
        rig.land(file_for(data))
    rig.bucket.uploads.clear()  # the lifecycle rule aborted the incomplete upload

    rig.fresh().land(file_for(data))

    assert rig.body() == data


def test_digest_state_from_another_openssl_cannot_be_resumed_and_the_file_restarts() -> None:
    data = content(8 * PART)
    rig = Rig({PATH: data}).fresh(kill_after_parts=4)
    with pytest.raises(Killed):
        rig.land(file_for(data))
    key = rig.checkpoints()[0]
    rig.bucket.bodies[key] = rig.bucket.bodies[key].replace(b"OpenSSL", b"OpenSSX")

    rig.fresh().land(file_for(data))

    assert rig.body() == data
    assert len(rig.bucket.aborted) == 1  # the old upload was dropped instead of continued


@pytest.mark.skipif(not digest_adapter.resumable(), reason="no low-level OpenSSL digests here")
def test_without_resumable_digests_a_restarted_file_still_lands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        transfer_module, "new_digest", lambda name, state=None: digest_adapter.hashlib_digest(name)
    )
    data = content(6 * PART)
    rig = Rig({PATH: data}).fresh(kill_after_parts=3)
    with pytest.raises(Killed):
        rig.land(file_for(data))

    rig.fresh().land(file_for(data))

    assert rig.body() == data


def test_files_of_a_few_mib_land_in_one_put_each_from_a_reused_buffer() -> None:
    files = {f"PSScene/f{i}.tif": content(2 * 1024 * KIB + i, seed=i) for i in range(3)}
    rig = Rig(files, part_bytes=4 * 1024 * KIB)

    for path, data in files.items():
        rig.transfer.land(file_for(data, path=path))
    rig.pool.shutdown()

    for path, data in files.items():
        assert rig.bucket.bodies[f"orders/acme/o-1/{path}"] == data
    assert "upload_part" not in rig.store.calls
    assert rig.transfer.buffers.take(4 * 1024 * KIB) is not None
    assert rig.transfer.budget.used == 0
