"""Landing an order (``order_core.services.landing``): which files, where they go, what is skipped, when it
stops and resumes, what fails the order. Planet, its storage and the bucket are in-memory fakes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from landing_fakes import (
    Bucket,
    FakeDownloader,
    FakePlanetFiles,
    FakeStore,
    Fault,
    content,
    digests,
)
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.errors import (
    LinkExpired,
    ResultVerificationFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.order import LandedFile, OrderRecord, Phase, utcnow
from order_core.models.planet import OrderState, PlanetOrder
from order_core.services import landing as landing_module
from order_core.services import transfer as transfer_module
from order_core.services.finalize import FinalizeService
from order_core.services.landing import LandingService, LandingTuning, safe_relative_path
from order_core.services.transfer import TransferLimits

UPSTREAM = "5ece1dc0-ea81-4ea1-a6cf-1b1b1f0c2a19"
ORDER = "0b1f62c2-9a55-4e4a-8a54-0c7d9a0e4a11"
BASE = f"orders/acme/{ORDER}"
KIB = 1024


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer_module.time, "sleep", lambda _s: None)
    monkeypatch.setattr(landing_module.time, "sleep", lambda _s: None)


def manifest_for(files: dict[str, bytes], **overrides: Any) -> bytes:
    entries = []
    for path, data in files.items():
        md5, sha256 = digests(data)
        entries.append(
            {
                "path": path,
                "media_type": "image/tiff",
                "size": len(data),
                "digests": {"md5": md5, "sha256": sha256},
            }
        )
    return json.dumps({"name": "", "files": entries, **overrides}).encode()


class FakeRepo(InMemoryOrderStore):
    """The in-memory order store holding one order, shown as ``record``."""

    def __init__(self, record: OrderRecord) -> None:
        super().__init__([record])
        self._order_id = record.order_id

    @property
    def record(self) -> OrderRecord:
        return self.records[self._order_id]

    @record.setter
    def record(self, value: OrderRecord) -> None:
        self.records[self._order_id] = value

    @property
    def updates(self) -> list[dict[str, Any]]:
        """The changes of every write, in order."""
        return self.writes


class FakePlanetApi:
    """GET order: the links of every result, fresh on every call (as Planet re-signs them)."""

    def __init__(
        self, files: FakePlanetFiles, *, failed: tuple[str, ...] = (), expired: bool = False
    ) -> None:
        self.files, self.failed, self.expired = files, failed, expired
        self.gets = 0
        self.names: dict[str, str] = {}  # result name -> path; tests may rename a result

    def get_order(self, order_id: str) -> PlanetOrder:
        self.gets += 1
        expires = utcnow() + (timedelta(hours=-1) if self.expired and self.gets == 1 else timedelta(hours=1))
        results = []
        for path in self.files.files:
            name = next((n for n, p in self.names.items() if p == path), f"{UPSTREAM}/{path}")
            if path in self.failed:
                results.append({"name": name, "delivery": "failed"})
                continue
            if self.gets > 1:
                self.files.link_version[path] = self.gets  # a new GET signs new links
            results.append(
                {
                    "name": name,
                    "delivery": "success",
                    "expires_at": expires.isoformat(),
                    "location": self.files.link(path),
                }
            )
        return PlanetOrder.model_validate(
            {"id": order_id, "state": "success", "_links": {"results": results}}
        )


class Rig:
    def __init__(
        self,
        files: dict[str, bytes],
        *,
        manifest: bytes | None = None,
        failed: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        delivered = {p: d for p, d in files.items() if p not in failed}
        self.planet_files = FakePlanetFiles({"manifest.json": manifest or manifest_for(delivered), **files})
        self.api = FakePlanetApi(self.planet_files, failed=failed, expired=kwargs.pop("expired", False))
        self.bucket = Bucket()
        self.repo = FakeRepo(
            OrderRecord(
                order_id=ORDER,
                tenant="acme",
                name="an order",
                request={"name": "an order"},
                state=OrderState.running,
                phase=Phase.DELIVERING,
                upstream_order_id=UPSTREAM,
                upstream_state=kwargs.pop("upstream_state", "success"),
            )
        )
        self.tuning = LandingTuning(
            transfer=TransferLimits(part_bytes=64 * KIB, min_part_bytes=1, checkpoint_seconds=0), **kwargs
        )

    def service(self) -> LandingService:
        self.store = FakeStore(self.bucket)
        return LandingService(
            self.repo,  # type: ignore[arg-type]
            self.api,  # type: ignore[arg-type]
            FakeDownloader(self.planet_files),  # type: ignore[arg-type]
            self.store,  # type: ignore[arg-type]
            "orders",
            self.tuning,
        )

    def land(self, seconds_left: Any = lambda: 600.0) -> Any:
        return self.service().land(ORDER, seconds_left)

    def landed_paths(self) -> set[str]:
        """What landed in the order's folder, the STAC catalog aside (``stac_documents``)."""
        return {
            path
            for path in (k.removeprefix(BASE + "/") for k in self.bucket.bodies if k.startswith(BASE + "/"))
            if not path.startswith("stac/")
        }

    def stac_documents(self) -> dict[str, Any]:
        """The order's STAC catalog and Items, by path in its folder."""
        return {
            path: json.loads(self.bucket.bodies[f"{BASE}/{path}"])
            for path in (k.removeprefix(BASE + "/") for k in self.bucket.bodies if k.startswith(BASE + "/"))
            if path.startswith("stac/")
        }

    def out_of_time_after(self, files: int) -> Any:
        """A ``seconds_left`` that runs out once ``files`` files are in the bucket (whatever the machine's
        speed: counting calls instead would, on a slow machine, stop before any file landed)."""

        def seconds_left() -> float:
            with self.bucket.lock:  # the workers are putting files meanwhile
                landed = [key for key in self.bucket.bodies if key.startswith(BASE + "/")]
            return 60.0 if len(landed) < files else 0.0

        return seconds_left

    def fetches(self, path: str) -> int:
        return sum(1 for r in self.planet_files.requests if r.path == path)


def some_files(count: int = 5, size: int = 40 * KIB) -> dict[str, bytes]:
    return {f"PSScene/item_{i}_3B_AnalyticMS.tif": content(size, seed=i) for i in range(count)}


# --- what lands, and where --------------------------------------------------------------------------------


def test_order_lands_every_file_verified_with_manifest_and_delivery_json_next_to_them() -> None:
    files = {**some_files(3), "PSScene/big_3B_udm2.tif": content(300 * KIB, seed=99)}
    rig = Rig(files)

    progress = rig.land()

    assert (progress.complete, progress.landed_files) == (True, 4)
    assert rig.landed_paths() == {*files, "manifest.json", "delivery.json"}
    for path, data in files.items():
        assert rig.bucket.bodies[f"{BASE}/{path}"] == data
    delivery = json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])
    assert {(f["path"], f["md5"], f["sha256"]) for f in delivery["files"]} == {
        (path, *digests(data)) for path, data in files.items()
    }
    assert rig.repo.record.delivery_key == f"{BASE}/delivery.json"
    assert rig.repo.record.landed_bytes == sum(len(d) for d in files.values())


def test_landing_called_again_after_it_finished_downloads_and_writes_nothing() -> None:
    rig = Rig(some_files(2))
    rig.land()
    calls, requests = len(rig.store.calls), len(rig.planet_files.requests)

    progress = rig.land()  # a duplicate workflow, or a Lambda retried after it finished

    assert (progress.complete, progress.landed_files) == (True, 3)
    assert rig.store.calls[calls:] == [] and len(rig.planet_files.requests) == requests


def test_partial_order_lands_only_the_delivered_items() -> None:
    files = some_files(4)
    failed = ("PSScene/item_1_3B_AnalyticMS.tif", "PSScene/item_3_3B_AnalyticMS.tif")
    rig = Rig(files, failed=failed, upstream_state="partial")

    progress = rig.land()

    assert (progress.complete, progress.landed_files) == (True, 2)
    assert rig.landed_paths() == {
        "PSScene/item_0_3B_AnalyticMS.tif",
        "PSScene/item_2_3B_AnalyticMS.tif",
        "manifest.json",
        "delivery.json",
    }
    assert all(rig.fetches(path) == 0 for path in failed)


@pytest.mark.parametrize(
    "name",
    [
        f"{UPSTREAM}/../../other-tenant/x.tif",
        f"{UPSTREAM}/PSScene/../../../x.tif",
        f"{UPSTREAM}/./x.tif",
        f"{UPSTREAM}/PSScene//x.tif",
        f"{UPSTREAM}/PSScene\\..\\..\\x.tif",
        f"{UPSTREAM}/x\x00.tif",
        f"{UPSTREAM}/",
        f"{UPSTREAM}/{'a' * 1000}.tif",
    ],
)
def test_result_whose_path_would_leave_the_order_folder_fails_the_order_before_anything_lands(
    name: str,
) -> None:
    rig = Rig(some_files(2))
    rig.api.names[name] = "PSScene/item_1_3B_AnalyticMS.tif"

    with pytest.raises(ResultVerificationFailed, match="would not stay inside the order's folder"):
        rig.land()

    assert rig.landed_paths() == set()


def test_nested_result_path_is_kept_as_is() -> None:
    assert safe_relative_path(f"{UPSTREAM}/PSScene/2022/item.tif") == "PSScene/2022/item.tif"


def test_manifest_listing_a_path_outside_the_order_fails_with_a_clear_hint() -> None:
    files = some_files(1)
    manifest = json.loads(manifest_for(files))
    manifest["files"][0]["path"] = "../../etc/passwd"
    rig = Rig(files, manifest=json.dumps(manifest).encode())

    with pytest.raises(ResultVerificationFailed, match=r"manifest.json is not valid: files\.0\.path"):
        rig.land()


def test_result_missing_from_the_manifest_fails_naming_it() -> None:
    files = some_files(2)
    rig = Rig(files, manifest=manifest_for({k: v for k, v in files.items() if "item_0" in k}))

    with pytest.raises(
        ResultVerificationFailed, match=r"item_1_3B_AnalyticMS\.tif is not listed in manifest\.json"
    ):
        rig.land()


def test_manifest_file_without_a_download_link_fails_naming_it() -> None:
    files = some_files(2)
    rig = Rig(files, manifest=manifest_for({**files, "PSScene/ghost.tif": b"boo"}))

    with pytest.raises(
        ResultVerificationFailed, match=r"Planet gave no download link for: PSScene/ghost\.tif"
    ):
        rig.land()


def test_file_that_never_verifies_fails_the_order_naming_it_and_it_never_lands() -> None:
    files = some_files(4)
    rig = Rig(files)
    bad = "PSScene/item_2_3B_AnalyticMS.tif"
    rig.planet_files.faults.append(Fault("corrupt", bad, times=100))

    with pytest.raises(ResultVerificationFailed, match=r"item_2_3B_AnalyticMS\.tif could not be landed.*md5"):
        rig.land()

    assert bad not in rig.landed_paths()
    assert "delivery.json" not in rig.landed_paths()


def test_order_not_finished_upstream_has_nothing_to_land() -> None:
    rig = Rig(some_files(1), upstream_state="running")

    assert rig.land().complete is True
    assert rig.api.gets == 0


# --- resume -----------------------------------------------------------------------------------------------


def test_time_running_out_returns_incomplete_and_the_next_call_lands_only_the_rest() -> None:
    files = some_files(8)
    rig = Rig(files, file_workers=1)

    first = rig.land(seconds_left=rig.out_of_time_after(2))

    assert first.complete is False
    assert 0 < first.landed_files < 8
    assert "delivery.json" not in rig.landed_paths()
    landed_first = {r.path for r in rig.repo.record.results}
    assert len(landed_first) == first.landed_files

    second = rig.land()

    assert (second.complete, second.landed_files) == (True, 8)
    assert all(rig.fetches(path) == 1 for path in files)  # nothing was downloaded twice


def test_files_already_in_the_bucket_with_matching_digests_are_skipped_even_if_the_record_forgot_them() -> (
    None
):
    files = some_files(3)
    rig = Rig(files)
    rig.land()
    rig.repo.record = rig.repo.record.model_copy(update={"results": []})  # e.g. a lost save after a kill

    rig.land()

    assert all(rig.fetches(path) == 1 for path in files)


def test_object_whose_metadata_does_not_match_the_manifest_is_landed_again() -> None:
    files = some_files(2)
    rig = Rig(files)
    path = "PSScene/item_0_3B_AnalyticMS.tif"
    rig.service()
    rig.store.put_bytes(
        f"{BASE}/{path}", files[path], metadata={"md5": "0" * 32, "sha256": "0" * 64}, content_type="x"
    )

    rig.land()

    assert rig.fetches(path) == 1
    assert rig.bucket.objects[f"{BASE}/{path}"].metadata["md5"] == digests(files[path])[0]


def test_expired_links_are_refreshed_with_one_get_of_the_order_for_all_files() -> None:
    files = some_files(6)
    rig = Rig(files, expired=True)

    rig.land()

    assert rig.landed_paths() >= set(files)
    assert rig.api.gets == 2  # the first GET (expired links), then one refresh shared by every file


def test_record_keeps_landed_files_with_their_digests() -> None:
    files = some_files(2)
    rig = Rig(files)

    rig.land()

    results = {r.path: r for r in rig.repo.record.results}
    assert set(results) == {*files, "manifest.json"}
    assert all(isinstance(r, LandedFile) and len(r.sha256) == 64 for r in results.values())


# --- manifest.json: the same retries as every file --------------------------------------------------------

MANIFEST = "manifest.json"


@pytest.mark.parametrize("retry_after", [None, 3.0])
def test_manifest_rate_limited_once_is_waited_out_and_the_order_lands(retry_after: float | None) -> None:
    files = some_files(2)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault("rate_limited", MANIFEST, retry_after=retry_after))

    progress = rig.land()

    assert progress.complete is True
    assert rig.landed_paths() == {*files, MANIFEST, "delivery.json"}
    assert rig.fetches(MANIFEST) == 2


@pytest.mark.parametrize("kind", ["unavailable", "truncate", "expire"])
def test_manifest_transient_fault_is_retried_and_the_order_lands(kind: str) -> None:
    files = some_files(2)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault(kind, MANIFEST, times=2))

    progress = rig.land()

    assert progress.complete is True
    assert rig.bucket.bodies[f"{BASE}/{MANIFEST}"] == rig.planet_files.files[MANIFEST]


@pytest.mark.parametrize(
    ("kind", "error"), [("rate_limited", UpstreamRateLimited), ("unavailable", UpstreamUnavailable)]
)
def test_manifest_fault_outlasting_the_retries_is_left_to_the_workflow_and_the_next_call_lands(
    kind: str, error: type[Exception]
) -> None:
    files = some_files(2)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault(kind, MANIFEST, times=1000))

    # The workflow retries LandResults on exactly these error types (not on a TypeError, say).
    with pytest.raises(error, match=r"^manifest\.json") as raised:
        rig.land()
    assert type(raised.value) is error
    rig.planet_files.faults.clear()

    assert rig.land().complete is True
    assert rig.landed_paths() == {*files, MANIFEST, "delivery.json"}


def test_corrupted_manifest_is_fetched_again_and_the_order_lands() -> None:
    files = some_files(2)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault("corrupt", MANIFEST, times=2))

    progress = rig.land()

    assert progress.complete is True
    assert rig.fetches(MANIFEST) == 3
    assert rig.bucket.bodies[f"{BASE}/{MANIFEST}"] == rig.planet_files.files[MANIFEST]


def test_manifest_corrupted_every_time_fails_after_as_many_attempts_as_a_file_naming_manifest_json() -> None:
    rig = Rig(some_files(2))
    rig.planet_files.faults.append(Fault("corrupt", MANIFEST, times=1000))

    with pytest.raises(
        ResultVerificationFailed, match=r"^manifest\.json could not be landed and verified after 3 attempts"
    ):
        rig.land()

    assert rig.fetches(MANIFEST) == rig.tuning.transfer.file_attempts == 3
    assert rig.landed_paths() == set()


# --- expired signed storage URLs --------------------------------------------------------------------------

EXPIRED_TOKEN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code><Message>Invalid argument."
    b"</Message><Details>The provided token has expired. Request signature expired at: "
    b"2026-11-30T10:00:00+00:00</Details></Error>"
)


@pytest.mark.parametrize("path", ["PSScene/item_1_3B_AnalyticMS.tif", MANIFEST])
def test_storage_answering_400_expired_token_refreshes_the_links_with_a_get_of_the_order_and_lands(
    path: str,
) -> None:
    files = some_files(3)
    rig = Rig(files)
    rig.planet_files.faults.append(Fault("status", path, on="storage", status=400, body=EXPIRED_TOKEN))

    progress = rig.land()

    assert progress.complete is True
    assert rig.landed_paths() == {*files, MANIFEST, "delivery.json"}
    assert rig.api.gets == 2  # the order's GET, then one refresh


def test_storage_answering_400_expired_token_every_time_fails_after_a_bounded_number_of_refreshes() -> None:
    path = "PSScene/item_1_3B_AnalyticMS.tif"
    rig = Rig(some_files(2))
    rig.planet_files.faults.append(
        Fault("status", path, on="storage", status=400, body=EXPIRED_TOKEN, times=1000)
    )

    with pytest.raises(LinkExpired, match=r"item_1_3B_AnalyticMS\.tif could not be landed"):
        rig.land()

    limits = rig.tuning.transfer
    assert 2 <= rig.api.gets <= 1 + limits.file_attempts * limits.range_attempts


def test_storage_answering_400_for_another_reason_fails_at_once_without_refreshing() -> None:
    path = "PSScene/item_1_3B_AnalyticMS.tif"
    rig = Rig(some_files(2))
    body = b"<Error><Code>InvalidArgument</Code><Message>Invalid argument.</Message></Error>"
    rig.planet_files.faults.append(Fault("status", path, on="storage", status=400, body=body, times=1000))

    with pytest.raises(UpstreamError, match=r"item_1_3B_AnalyticMS\.tif: download answered 400") as raised:
        rig.land()

    assert type(raised.value) is UpstreamError
    assert (rig.api.gets, rig.fetches(path)) == (1, 1)


# --- a failed or partial order reports exactly what landed ------------------------------------------------


def finalize(rig: Rig, **outcome: Any) -> tuple[OrderState, dict[str, Any]]:
    events = FakeEvents()
    state = FinalizeService(rig.repo, events, "results").finalize(ORDER, **outcome)  # type: ignore[arg-type]
    (event,) = events.published
    return state, event.model_dump()


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish(self, event: Any) -> None:
        self.published.append(event)


def bucket_files(rig: Rig) -> dict[str, int]:
    """The order's result files in the bucket and their sizes (manifest.json and delivery.json aside)."""
    return {
        path: len(rig.bucket.bodies[f"{BASE}/{path}"])
        for path in rig.landed_paths()
        if path not in (MANIFEST, "delivery.json")
    }


def landing_error(exc: BaseException) -> dict[str, str]:
    return {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc)})}


def test_failed_landing_keeps_its_verified_files_and_its_record_and_event_report_exactly_them() -> None:
    files = some_files(5)
    rig = Rig(files, file_workers=1)
    rig.planet_files.faults.append(Fault("corrupt", "PSScene/item_4_3B_AnalyticMS.tif", times=1000))

    with pytest.raises(ResultVerificationFailed) as raised:
        rig.land()
    state, event = finalize(rig, upstream_state="success", error=landing_error(raised.value))

    in_bucket = bucket_files(rig)
    assert len(in_bucket) >= 1 and "PSScene/item_4_3B_AnalyticMS.tif" not in in_bucket
    assert {r.path: r.size for r in rig.repo.record.results} == in_bucket
    assert rig.repo.record.landed_bytes == sum(in_bucket.values())
    assert state is OrderState.failed
    assert (event["files"], event["bytes"]) == (len(in_bucket), sum(in_bucket.values()))
    assert event["delivery"] is None  # no delivery.json was written
    assert any(
        f"only {len(in_bucket)} file(s)" in hint and "incomplete" in hint for hint in event["error_hints"]
    )


def test_failed_landing_records_files_an_earlier_killed_invocation_landed_but_never_saved() -> None:
    files = some_files(6)
    rig = Rig(files, file_workers=1)
    rig.land(seconds_left=rig.out_of_time_after(2))
    rig.repo.record = rig.repo.record.model_copy(update={"results": []})  # the save was lost with the kill
    rig.planet_files.faults.append(Fault("corrupt", MANIFEST, times=1000))

    with pytest.raises(ResultVerificationFailed, match=r"^manifest\.json"):
        rig.land()

    in_bucket = bucket_files(rig)
    assert in_bucket
    assert {r.path: r.size for r in rig.repo.record.results} == in_bucket
    assert all(r.md5 == digests(files[r.path])[0] for r in rig.repo.record.results)


def test_partial_order_reports_the_delivered_files_and_names_the_ones_planet_did_not_deliver() -> None:
    files = some_files(4)
    failed = ("PSScene/item_1_3B_AnalyticMS.tif",)
    rig = Rig(files, failed=failed, upstream_state="partial")

    rig.land()
    state, event = finalize(rig, upstream_state="partial")

    in_bucket = bucket_files(rig)
    assert len(in_bucket) == 3
    assert state is OrderState.partial
    assert (event["files"], event["bytes"]) == (3, sum(in_bucket.values()))
    delivery = json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])
    assert {f["path"] for f in delivery["files"]} == set(in_bucket)
    assert delivery["not_delivered"] == [f"{UPSTREAM}/{failed[0]}"]
    assert any("did not deliver 1 result file(s)" in h and failed[0] in h for h in event["error_hints"])
