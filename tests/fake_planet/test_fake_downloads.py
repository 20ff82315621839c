"""Download links, the signed storage they redirect to, manifest digests, ranges and streaming memory."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from planet_fake.server import FakePlanetServer
from planet_fake.tokens import storage_signature

from .support import FAST, PlanetApi, fetch, results_by_path, scenes_request

ANALYTIC = "PSScene/20220304_093300_37_2430_3B_AnalyticMS.tif"


@pytest.fixture
def done_order(fake: FakePlanetServer, api: PlanetApi) -> dict[str, Any]:
    """A successful two-scene order, created with a zero-length timeline."""
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    return api.create_and_wait(
        scenes_request(item_ids=["20220304_093300_37_2430", "20220304_093257_90_2430"])
    )


def _location(order: dict[str, Any], path: str = ANALYTIC) -> str:
    location: str = results_by_path(order)[path]["location"]
    return location


def test_download_link_redirects_to_signed_storage_url(
    fake: FakePlanetServer, done_order: dict[str, Any]
) -> None:
    response = fetch(_location(done_order), allow_redirects=False)

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == fake.url
    assert target.path == f"/storage/{done_order['id']}/{ANALYTIC}"
    assert set(parse_qs(target.query)) == {"expires", "signature"}


def test_storage_response_has_length_disposition_and_no_chunking(done_order: dict[str, Any]) -> None:
    response = fetch(_location(done_order))

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(FAST.file_size) == str(len(response.content))
    assert response.headers["Content-Type"] == "image/tiff"
    assert (
        response.headers["Content-Disposition"]
        == 'attachment; filename="20220304_093300_37_2430_3B_AnalyticMS.tif"'
    )
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "Transfer-Encoding" not in response.headers


def test_storage_serves_an_archive_named_after_a_non_ascii_order_name_with_an_rfc6266_disposition(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    request = scenes_request(name="Gröningen Ĝ", item_ids=["20220304_093300_37_2430"])
    request["delivery"] = {"archive_type": "zip", "single_archive": True, "archive_filename": "{{name}}"}
    order = api.create_and_wait(request)

    response = fetch(_location(order, "Gröningen Ĝ.zip"))

    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Gr_ningen _.zip\"; filename*=UTF-8''Gr%C3%B6ningen%20%C4%9C.zip"
    )


def test_manifest_digests_and_sizes_match_downloaded_bytes(done_order: dict[str, Any]) -> None:
    results = results_by_path(done_order)
    manifest = fetch(results["manifest.json"]["location"]).json()

    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(results) - {"manifest.json"}
    for path, entry in listed.items():
        body = fetch(results[path]["location"]).content
        assert entry["size"] == len(body)
        assert entry["digests"] == {
            "md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        annotations = entry["annotations"]
        assert (
            annotations["planet/item_type"] == "PSScene"
            and annotations["planet/bundle_type"] == "analytic_udm2"
        )
        assert path.split("/")[1].startswith(annotations["planet/item_id"])
        assert ("planet/asset_type" in annotations) == (not path.endswith("_metadata.json"))


def test_generated_files_are_deterministic_and_distinct(done_order: dict[str, Any]) -> None:
    results = results_by_path(done_order)
    udm2 = ANALYTIC.replace("AnalyticMS", "udm2")

    first, again = fetch(results[ANALYTIC]["location"]).content, fetch(results[ANALYTIC]["location"]).content
    other = fetch(results[udm2]["location"]).content

    assert first == again
    assert len(other) == len(first) and other != first


def test_expired_download_link_returns_401(fake: FakePlanetServer, api: PlanetApi) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0, "link_ttl_seconds": 0})
    order = api.create_and_wait(scenes_request())

    response = fetch(_location(order), allow_redirects=False)

    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_forged_download_token_returns_401(fake: FakePlanetServer, done_order: dict[str, Any]) -> None:
    location = _location(done_order)
    fake.store.update_config({"token_secret": "rotated-secret"})

    response = fetch(location, allow_redirects=False)

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid download token"}


def _storage_url(fake: FakePlanetServer, order_id: str, expires: int, secret: str = FAST.token_secret) -> str:
    object_path = f"{order_id}/{ANALYTIC}"
    signature = storage_signature(secret, object_path, expires)
    return f"{fake.url}/storage/{object_path}?expires={expires}&signature={signature}"


def test_storage_expired_signed_url_returns_400_expired_token_like_gcs(
    fake: FakePlanetServer, done_order: dict[str, Any]
) -> None:
    valid = requests.get(_storage_url(fake, done_order["id"], int(time.time()) + 60), timeout=10)
    expired = requests.get(_storage_url(fake, done_order["id"], int(time.time()) - 1), timeout=10)

    assert valid.status_code == 200
    assert expired.status_code == 400
    assert expired.headers["Content-Type"].startswith("application/xml")
    assert "<Code>ExpiredToken</Code>" in expired.text
    assert "The provided token has expired" in expired.text


def test_storage_tampered_signature_returns_403_signature_mismatch(
    fake: FakePlanetServer, done_order: dict[str, Any]
) -> None:
    url = _storage_url(fake, done_order["id"], int(time.time()) + 60, secret="someone-else")

    response = requests.get(url, timeout=10)

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=100-199", 100, 200), (f"bytes={FAST.file_size - 10}-", FAST.file_size - 10, FAST.file_size)],
)
def test_storage_single_range_returns_206_with_that_slice(
    done_order: dict[str, Any], header: str, start: int, end: int
) -> None:
    whole = fetch(_location(done_order)).content

    response = fetch(_location(done_order), headers={"Range": header})

    assert response.status_code == 206
    assert response.content == whole[start:end]
    assert response.headers["Content-Length"] == str(end - start)
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{FAST.file_size}"


def test_storage_unsatisfiable_range_returns_416(done_order: dict[str, Any]) -> None:
    response = fetch(_location(done_order), headers={"Range": f"bytes={FAST.file_size}-"})

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{FAST.file_size}"


def test_storage_base_url_config_points_redirects_elsewhere(
    fake: FakePlanetServer, done_order: dict[str, Any]
) -> None:
    fake.store.update_config({"storage_base_url": "https://storage.example.com/"})

    response = fetch(_location(done_order), allow_redirects=False)

    assert response.headers["Location"].startswith(f"https://storage.example.com/storage/{done_order['id']}/")


def test_large_file_streams_with_bounded_memory(fake: FakePlanetServer, api: PlanetApi) -> None:
    size = 256 * 1024 * 1024
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0, "file_size": size})
    location = _location(api.create_and_wait(scenes_request()))

    tracemalloc.start()
    try:
        received = 0
        with fetch(location, stream=True) as response:
            assert response.headers["Content-Length"] == str(size)
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert received == size
    assert peak < 32 * 1024 * 1024
