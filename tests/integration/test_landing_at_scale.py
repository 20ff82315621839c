"""Landing through the real FinalizeFunction / LandingService, boto3 against moto, the fake Planet upstream.

What the unit tests prove with fakes, here with real HTTP to the fake Planet (redirects, byte ranges, its
faults) and real S3 calls: multipart uploads of ranged parts, resuming one in a fresh process, refused
redirects, and faults that are healed without the order noticing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import boto3
import pytest
import requests
from harness import AwsStack
from test_handlers import poll_until_final, requests_config, submitted_order

KIB, MIB = 1024, 1024 * 1024


def land(stack: AwsStack, order_id: str) -> Any:
    return stack.invoke_raw("FinalizeFunction", {"action": "land", "order_id": order_id, "tenant": "default"})


def finished_order(stack: AwsStack, **config: Any) -> str:
    if config:
        requests_config(stack, **config)
    order_id = submitted_order(stack)
    assert poll_until_final(stack, order_id)["upstream_state"] == "success"
    return order_id


def landed(stack: AwsStack, order_id: str) -> dict[str, dict[str, Any]]:
    s3 = boto3.client("s3")
    bucket = stack.ref("ResultsBucket")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"orders/default/{order_id}/").get("Contents", [])
    return {o["Key"].split(f"{order_id}/", 1)[1]: o for o in listed}


def verify_against_manifest(stack: AwsStack, order_id: str) -> dict[str, Any]:
    s3 = boto3.client("s3")
    bucket = stack.ref("ResultsBucket")
    prefix = f"orders/default/{order_id}/"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    for entry in manifest["files"]:
        body = s3.get_object(Bucket=bucket, Key=prefix + entry["path"])["Body"].read()
        assert len(body) == entry["size"]
        assert hashlib.md5(body, usedforsecurity=False).hexdigest() == entry["digests"]["md5"]
        assert hashlib.sha256(body).hexdigest() == entry["digests"]["sha256"]
    return manifest


def storage_requests(stack: AwsStack) -> list[dict[str, Any]]:
    log = requests.get(f"{stack.planet.url}/_fake/requests", timeout=5).json()["requests"]
    return [r for r in log if r["op"] == "storage"]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> Any:
    """LandingService with 256 KiB parts (moto is told to accept them), to exercise multipart cheaply."""
    from moto.s3 import models as moto_s3
    from order_core import wiring
    from order_core.services.landing import LandingService, LandingTuning
    from order_core.services.transfer import TransferLimits

    monkeypatch.setattr(moto_s3, "S3_UPLOAD_PART_MIN_SIZE", 256 * KIB)

    def build() -> LandingService:
        wiring.reset()
        base = wiring.landing_service()
        tuning = LandingTuning(
            file_workers=4,
            part_workers=4,
            transfer=TransferLimits(part_bytes=256 * KIB, min_part_bytes=1, buffer_bytes=1 * MIB),
        )
        return LandingService(
            wiring.orders_repo(), wiring.planet_client(), base._downloader, base._store, "orders", tuning
        )

    return build


def test_large_files_land_as_multipart_uploads_of_ranged_parts_verified_against_the_manifest(
    aws_stack: AwsStack, small_parts: Any
) -> None:
    order_id = finished_order(aws_stack, file_size=1 * MIB + 5 * KIB)
    service = small_parts()

    progress = service.land(order_id, lambda: 600.0)

    assert progress.complete is True
    manifest = verify_against_manifest(aws_stack, order_id)
    objects = landed(aws_stack, order_id)
    tifs = [e["path"] for e in manifest["files"] if e["path"].endswith(".tif")]
    assert tifs and all(objects[path]["ETag"].endswith('-5"') for path in tifs)  # 4 full parts + 1
    ranged = [r for r in storage_requests(aws_stack) if r["status"] == 206]
    assert len(ranged) >= 5 * len(tifs)
    assert service.peak_buffer_bytes <= 1 * MIB
    state = boto3.client("s3").list_objects_v2(
        Bucket=aws_stack.ref("ResultsBucket"), Prefix="_landing-state/"
    )
    assert state.get("KeyCount", 0) == 0  # checkpoints are removed once their file landed


def test_landing_stopped_for_time_resumes_in_a_new_process_without_fetching_committed_parts_again(
    aws_stack: AwsStack, small_parts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from order_core.adapters.storage import ResultsStore

    requests_config(aws_stack, file_size=3 * MIB)
    order_id = submitted_order(
        aws_stack,
        {
            "name": "one big scene",
            "source_type": "scenes",
            "products": [
                {
                    "item_ids": ["20220304_093300_37_2430"],
                    "item_type": "PSScene",
                    "product_bundle": "analytic_udm2",
                }
            ],
        },
    )
    poll_until_final(aws_stack, order_id)
    out_of_time, noticed = threading.Event(), threading.Event()
    original = ResultsStore.upload_part

    def upload_part(self: ResultsStore, *args: Any, **kwargs: Any) -> Any:
        receipt = original(self, *args, **kwargs)
        out_of_time.set()  # a part is in: from now on the invocation is out of time
        noticed.wait(5)  # (S3 is slower than moto: nothing more lands before the function notices)
        return receipt

    def seconds_left() -> float:
        if out_of_time.is_set():
            noticed.set()
            return 0.0
        return 600.0

    monkeypatch.setattr(ResultsStore, "upload_part", upload_part)
    first = small_parts().land(order_id, seconds_left)
    monkeypatch.setattr(ResultsStore, "upload_part", original)
    assert first.complete is False
    s3 = boto3.client("s3")
    bucket = aws_stack.ref("ResultsBucket")
    checkpoints = s3.list_objects_v2(Bucket=bucket, Prefix=f"_landing-state/default/{order_id}/")["Contents"]
    committed = sum(
        len(json.loads(s3.get_object(Bucket=bucket, Key=c["Key"])["Body"].read())["parts"])
        for c in checkpoints
    )
    ranged_before = len([r for r in storage_requests(aws_stack) if r["status"] == 206])

    second = small_parts().land(order_id, lambda: 600.0)  # wiring.reset(): a new execution environment

    assert second.complete is True
    verify_against_manifest(aws_stack, order_id)
    ranged_after = len([r for r in storage_requests(aws_stack) if r["status"] == 206])
    assert committed >= 1
    assert ranged_after - ranged_before == 2 * 12 - committed  # two 3 MiB tifs in 256 KiB parts


def test_result_redirected_to_the_metadata_address_is_refused_and_nothing_lands(aws_stack: AwsStack) -> None:
    order_id = finished_order(aws_stack)
    requests_config(aws_stack, storage_base_url="http://169.254.169.254")

    result = land(aws_stack, order_id)

    assert result.errored
    error = json.loads(result.payload)
    assert error["errorType"] == "DownloadRefused"
    assert "169.254.169.254" in error["errorMessage"]
    assert landed(aws_stack, order_id) == {}


def test_redirect_from_an_allowed_host_to_127_0_0_1_is_refused_when_127_0_0_1_is_not_allowed(
    aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from order_core import wiring

    order_id = finished_order(aws_stack)
    # Planet's links now come from "localhost" (allowed); their storage redirect goes to 127.0.0.1 (not).
    monkeypatch.setenv("PLANET_API_URL", aws_stack.planet.base_url.replace("127.0.0.1", "localhost"))
    monkeypatch.setenv("DOWNLOAD_ALLOWED_HOSTS", "localhost")
    requests_config(aws_stack, storage_base_url=aws_stack.planet.url)
    wiring.reset()

    result = land(aws_stack, order_id)

    error = json.loads(result.payload)
    assert (error["errorType"], result.errored) == ("DownloadRefused", True)
    assert "'127.0.0.1': not in the allowed hosts" in error["errorMessage"]
    assert landed(aws_stack, order_id) == {}


def test_truncated_and_corrupted_transfers_are_detected_and_retried_and_the_order_lands(
    aws_stack: AwsStack,
) -> None:
    order_id = finished_order(aws_stack)
    aws_stack.planet_fault(op="storage", kind="truncate", times=1, path_contains="AnalyticMS.tif")
    aws_stack.planet_fault(op="storage", kind="corrupt", times=1, path_contains="udm2.tif")

    result = land(aws_stack, order_id)

    assert not result.errored, result.payload
    assert json.loads(result.payload)["complete"] is True
    verify_against_manifest(aws_stack, order_id)
    faulted = [r for r in storage_requests(aws_stack) if r["fault"]]
    assert {r["fault"] for r in faulted} == {"truncate", "corrupt"}


def test_every_transient_fault_on_manifest_json_is_retried_and_the_order_lands(aws_stack: AwsStack) -> None:
    order_id = finished_order(aws_stack)
    requests.delete(f"{aws_stack.planet.url}/_fake/requests", timeout=5)
    # One after the other, on the manifest's storage request: each fault once, oldest first.
    for rule in (
        {"kind": "status", "status": 429},
        {"kind": "status", "status": 429, "retry_after": 1},
        {"kind": "status", "status": 503},
        {"kind": "reset"},
        {"kind": "truncate"},
        {"kind": "corrupt"},
    ):
        aws_stack.planet_fault(op="storage", times=1, path_contains="manifest.json", **rule)

    result = land(aws_stack, order_id)

    assert not result.errored, result.payload
    assert json.loads(result.payload)["complete"] is True
    verify_against_manifest(aws_stack, order_id)
    faulted = [r for r in storage_requests(aws_stack) if r["fault"] and "manifest.json" in r["path"]]
    assert [r["fault"] for r in faulted] == ["status", "status", "status", "reset", "truncate", "corrupt"]


def test_refused_download_links_are_refreshed_by_getting_the_order_again(aws_stack: AwsStack) -> None:
    order_id = finished_order(aws_stack)
    requests.delete(f"{aws_stack.planet.url}/_fake/requests", timeout=5)
    aws_stack.planet_fault(op="download", kind="status", status=401, times=2, path_contains="download")

    result = land(aws_stack, order_id)

    assert not result.errored, result.payload
    verify_against_manifest(aws_stack, order_id)
    gets = [
        r
        for r in requests.get(f"{aws_stack.planet.url}/_fake/requests", timeout=5).json()["requests"]
        if r["op"] == "get"
    ]
    assert len(gets) >= 2  # the order's GET, then at least one refresh


def test_links_that_are_always_refused_end_in_a_failure_naming_the_file(aws_stack: AwsStack) -> None:
    order_id = finished_order(aws_stack)
    requests_config(aws_stack, link_ttl_seconds=0)  # every link is born expired

    result = land(aws_stack, order_id)

    error = json.loads(result.payload)
    assert result.errored and error["errorType"] == "LinkExpired"
    assert error["errorMessage"].startswith("manifest.json could not be landed and verified after 3 attempts")


# --- the STAC catalog and zip archives, against real S3 calls ---------------------------------------------


class _S3StacIO:
    """What a user plugs into pystac to read ``s3://`` hrefs (with boto3 here; fsspec works the same)."""

    @staticmethod
    def build() -> Any:
        from pystac.stac_io import DefaultStacIO

        class S3StacIO(DefaultStacIO):
            def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
                href = str(source)
                if href.startswith("s3://"):
                    bucket, key = href.removeprefix("s3://").split("/", 1)
                    return str(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode())
                return str(super().read_text(source, *args, **kwargs))

        return S3StacIO()


def test_landed_order_opens_with_pystac_from_s3_and_every_asset_is_the_landed_object(
    aws_stack: AwsStack,
) -> None:
    import pystac

    order_id = finished_order(aws_stack)
    assert json.loads(land(aws_stack, order_id).payload)["complete"] is True
    bucket = aws_stack.ref("ResultsBucket")
    prefix = f"orders/default/{order_id}"
    delivery = json.loads(
        boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/delivery.json")["Body"].read()
    )

    catalog = pystac.Catalog.from_file(f"s3://{bucket}/{delivery['stac_catalog']}", stac_io=_S3StacIO.build())

    items = list(catalog.get_items(recursive=True))
    objects = landed(aws_stack, order_id)
    data_files = {f["path"] for f in delivery["files"]}
    assert items
    seen = set()
    for item in items:
        for asset in item.assets.values():
            href = asset.get_absolute_href()
            assert href is not None and href.startswith(f"s3://{bucket}/{prefix}/")
            path = href.removeprefix(f"s3://{bucket}/{prefix}/")
            assert objects[path]["Size"] == asset.extra_fields["file:size"]
            seen.add(path)
    assert seen == data_files  # every landed file, once


def test_zip_archive_in_s3_is_verified_through_ranged_gets_in_constant_memory(aws_stack: AwsStack) -> None:
    import io
    import zipfile

    from order_core.adapters.storage import ResultsStore
    from order_core.errors import ResultVerificationFailed
    from order_core.services.archives import verify_archive

    members = {f"PSScene/item_{i}.tif": hashlib.sha256(bytes([i])).digest() * (40 * KIB) for i in range(3)}
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    data = sink.getvalue()
    bucket = aws_stack.ref("ResultsBucket")
    boto3.client("s3").put_object(Bucket=bucket, Key="orders/default/x/a.zip", Body=data)
    store = ResultsStore(bucket)
    md5, sha256 = hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()

    report = verify_archive(store, "orders/default/x/a.zip", len(data), md5, sha256, block_bytes=64 * KIB)

    assert {m.path: m.sha256 for m in report.members} == {
        path: hashlib.sha256(body).hexdigest() for path, body in members.items()
    }
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    boto3.client("s3").put_object(Bucket=bucket, Key="orders/default/x/b.zip", Body=bytes(damaged))
    with pytest.raises(ResultVerificationFailed, match=r"b\.zip"):
        verify_archive(store, "orders/default/x/b.zip", len(data), md5, sha256, block_bytes=64 * KIB)


# --- zip and STAC deliveries of the fake Planet, landed end to end -----------------------------------------


def _land_order(stack: AwsStack, request_changes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from test_handlers import scenes_request

    order_id = submitted_order(stack, scenes_request() | request_changes)
    assert poll_until_final(stack, order_id)["upstream_state"] == "success"
    result = land(stack, order_id)
    assert not result.errored, result.payload
    assert json.loads(result.payload)["complete"] is True
    bucket = stack.ref("ResultsBucket")
    delivery_key = f"orders/default/{order_id}/delivery.json"
    delivery = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=delivery_key)["Body"].read())
    return order_id, delivery


@pytest.mark.parametrize(
    "delivery",
    [
        {"archive_type": "zip"},
        {"archive_type": "zip", "single_archive": True, "archive_filename": "{{name}}.zip"},
    ],
    ids=["an-archive-per-item", "single-archive"],
)
def test_zip_delivery_lands_the_archives_verified_member_by_member_with_a_stac_catalog(
    aws_stack: AwsStack, delivery: dict[str, Any]
) -> None:
    import pystac

    order_id, described = _land_order(aws_stack, {"delivery": delivery})

    manifest = verify_against_manifest(aws_stack, order_id)  # the archives, against Planet's manifest
    archives = [entry["path"] for entry in manifest["files"]]
    assert archives and all(path.endswith(".zip") for path in archives)
    assert set(described["archives"]) == set(archives)
    for path in archives:
        members = {m["path"] for m in described["archives"][path]["members"]}
        assert "manifest.json" in members and any(m.endswith(".tif") for m in members)
        assert "manifest.json" in described["archives"][path]["verified"]
    bucket = aws_stack.ref("ResultsBucket")
    catalog = pystac.Catalog.from_file(
        f"s3://{bucket}/{described['stac_catalog']}", stac_io=_S3StacIO.build()
    )
    items = list(catalog.get_items(recursive=True))
    assert len(items) == len(scenes_request_item_ids())
    for item in items:
        hrefs = [asset.href for asset in item.assets.values()]
        assert any(href.startswith("zip+s3://") and href.endswith(".tif") for href in hrefs)
        assert any(asset.roles == ["archive"] for asset in item.assets.values())


def scenes_request_item_ids() -> list[str]:
    from test_handlers import scenes_request

    return [item for product in scenes_request()["products"] for item in product["item_ids"]]


def test_order_with_planet_stac_metadata_lands_planets_stac_files_and_ours(aws_stack: AwsStack) -> None:
    order_id, described = _land_order(aws_stack, {"metadata": {"stac": {}}})

    manifest = verify_against_manifest(aws_stack, order_id)
    objects = landed(aws_stack, order_id)
    assert "catalog.json" in objects and "catalog.json" in {e["path"] for e in manifest["files"]}  # Planet's
    assert described["stac_catalog"] == f"orders/default/{order_id}/stac/catalog.json"
    ours = [path for path in objects if path.startswith("stac/items/")]
    assert len(ours) >= len(scenes_request_item_ids())
