"""The STAC catalog every landed order gets next to delivery.json: valid against the STAC schemas (read from
files here, never the network), opened with pystac from the bucket, assets pointing at the landed objects."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pystac
import pytest
from landing_fakes import content, digests, inner_manifest_for, zip_of
from pystac.stac_io import StacIO
from pystac.validation import JsonSchemaSTACValidator
from test_landing_archives import ARCHIVE, ITEM, annotations, members, top_manifest
from test_landing_service import BASE, KIB, ORDER, Rig, no_sleeping  # noqa: F401 - the fixture applies here

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "stac-schemas"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
BUCKET = "results"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must use the schemas on disk: any attempt to open a connection fails the test."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a STAC test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def validator() -> JsonSchemaSTACValidator:
    """pystac's validator with every schema local: STAC core and GeoJSON ship with pystac, the File
    extension's is in tests/data (Apache-2.0, from stac-extensions/file v2.1.0)."""
    checker = JsonSchemaSTACValidator()
    checker.schema_cache[FILE_EXTENSION] = json.loads((SCHEMAS / "file-v2.1.0" / "schema.json").read_text())
    return checker


class BucketIO(StacIO):
    """pystac reading ``s3://results/…`` from the fake bucket, as it would through boto3 or fsspec."""

    def __init__(self, rig: Rig) -> None:
        super().__init__()
        self.rig = rig

    def read_text(self, source: Any, *_args: Any, **_kwargs: Any) -> str:
        href = str(source)
        assert href.startswith(f"s3://{BUCKET}/"), href
        return self.rig.bucket.bodies[href.removeprefix(f"s3://{BUCKET}/")].decode()

    def write_text(self, dest: Any, txt: str, *_args: Any, **_kwargs: Any) -> None:  # pragma: no cover
        raise AssertionError("read only")


def scene_files() -> dict[str, bytes]:
    """A plain (not zipped) delivery of one PSScene item: two images and Planet's item metadata."""
    return {f"PSScene/{path.split('/', 1)[1]}": data for path, data in members().items()}


def scene_manifest(files: dict[str, bytes]) -> bytes:
    listed = inner_manifest_for(files, {f"PSScene/{p.split('/', 1)[1]}": a for p, a in annotations().items()})
    return json.dumps(listed).encode()


def validate_all(rig: Rig) -> dict[str, Any]:
    documents = rig.stac_documents()
    checker = validator()
    for path, document in documents.items():
        href = f"s3://{BUCKET}/{BASE}/{path}"
        pystac.validation.validate_dict(document, href=href, validator=checker)
    return documents


def test_landed_order_gets_a_stac_catalog_valid_against_the_schemas(offline: None) -> None:
    files = scene_files()
    rig = Rig(files, manifest=scene_manifest(files))

    assert rig.land().complete

    documents = validate_all(rig)
    assert set(documents) == {"stac/catalog.json", f"stac/items/{ITEM}.json"}
    assert (
        json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])["stac_catalog"] == f"{BASE}/stac/catalog.json"
    )


def test_stac_item_assets_point_at_the_landed_objects_with_their_size_and_checksum(offline: None) -> None:
    files = scene_files()
    rig = Rig(files, manifest=scene_manifest(files))
    assert rig.land().complete

    item = rig.stac_documents()[f"stac/items/{ITEM}.json"]

    assert item["geometry"]["type"] == "Polygon"
    assert item["bbox"] == [10.0, 50.0, 10.5, 50.5]
    assert item["properties"]["datetime"].startswith("2024-09-09T02:13:18.75")
    assert item["properties"]["planet:item_type"] == "PSScene"
    assert FILE_EXTENSION in item["stac_extensions"]
    assets = item["assets"]
    assert set(assets) == {"ortho_analytic_8b_sr", "ortho_udm2", f"{ITEM}_metadata.json"}
    for asset in assets.values():
        path = asset["title"]
        assert asset["href"] == f"s3://{BUCKET}/{BASE}/{path}"
        assert rig.bucket.bodies[asset["href"].removeprefix(f"s3://{BUCKET}/")] == files[path]
        assert asset["file:size"] == len(files[path])
        assert asset["file:checksum"] == "1220" + digests(files[path])[1]
    assert assets["ortho_udm2"]["type"] == "image/tiff"
    assert assets["ortho_udm2"]["roles"] == ["data"]
    assert assets[f"{ITEM}_metadata.json"]["roles"] == ["metadata"]


def test_pystac_opens_the_landed_order_straight_from_the_bucket(offline: None) -> None:
    files = scene_files()
    rig = Rig(files, manifest=scene_manifest(files))
    assert rig.land().complete

    catalog = pystac.Catalog.from_file(f"s3://{BUCKET}/{BASE}/stac/catalog.json", stac_io=BucketIO(rig))

    items = list(catalog.get_items(recursive=True))
    assert [item.id for item in items] == [ITEM]
    assert catalog.catalog_type == pystac.CatalogType.ABSOLUTE_PUBLISHED
    hrefs = {asset.get_absolute_href() for asset in items[0].assets.values()}
    assert hrefs == {f"s3://{BUCKET}/{BASE}/{path}" for path in files}


def test_files_of_no_item_form_the_orders_own_item_and_metadata_files_join_their_item(offline: None) -> None:
    # A composite delivery: no annotations on the composite, item metadata named after each item.
    files = {
        "composite.tif": content(30 * KIB, seed=1),
        "composite_udm.tif": content(10 * KIB, seed=2),
        "20240101_000000_00_aaaa_metadata.json": b'{"type": "Feature", "geometry": null, "properties": {}}',
    }
    rig = Rig(files)
    assert rig.land().complete

    documents = validate_all(rig)

    assert set(documents) == {
        "stac/catalog.json",
        f"stac/items/{ORDER}.json",
        "stac/items/20240101_000000_00_aaaa.json",
    }
    order_item = documents[f"stac/items/{ORDER}.json"]
    assert order_item["geometry"] is None and "bbox" not in order_item
    assert set(order_item["assets"]) == {"composite.tif", "composite_udm.tif"}


def test_zip_order_catalog_lists_the_archive_and_its_members_readable_by_gdal(offline: None) -> None:
    archive = zip_of(members(), inner_manifest=inner_manifest_for(members(), annotations()))
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))
    assert rig.land().complete

    documents = validate_all(rig)

    item = documents[f"stac/items/{ITEM}.json"]
    assert item["bbox"] == [10.0, 50.0, 10.5, 50.5]  # from the metadata inside the archive
    assets = item["assets"]
    whole = assets[ARCHIVE]
    assert whole["href"] == f"s3://{BUCKET}/{BASE}/{ARCHIVE}"
    assert (whole["file:size"], whole["roles"]) == (len(archive), ["archive"])
    assert whole["file:checksum"] == "1220" + digests(archive)[1]
    image = assets["ortho_analytic_8b_sr"]
    member = f"PSScene/{ITEM}_3B_AnalyticMS_SR_8b.tif"
    assert image["href"] == f"zip+s3://{BUCKET}/{BASE}/{ARCHIVE}!/{member}"
    assert image["file:checksum"] == "1220" + digests(members()[member])[1]
    assert "manifest.json" not in {a["title"].rsplit("!/", 1)[-1] for a in assets.values()}


def test_planet_stac_files_land_like_any_file_and_our_catalog_is_still_written(offline: None) -> None:
    # Planet's own STAC metadata (metadata.stac requested): a catalog at the order's root, a collection per
    # item type, an Item per scene. Files of the delivery like any other, landed and verified.
    planet_stac = {
        "catalog.json": json.dumps({"type": "Catalog", "id": "order", "links": []}).encode(),
        "PSScene/collection.json": json.dumps({"type": "Collection", "id": "PSScene"}).encode(),
        f"PSScene/{ITEM}.json": json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": ITEM}).encode(),
    }
    files = {**scene_files(), **planet_stac}
    rig = Rig(files, manifest=scene_manifest(files))

    assert rig.land().complete

    for path, data in planet_stac.items():
        assert rig.bucket.bodies[f"{BASE}/{path}"] == data
    documents = validate_all(rig)
    # Planet's catalog and collection belong to no item: the order's own Item lists them.
    assert set(documents) == {"stac/catalog.json", f"stac/items/{ITEM}.json", f"stac/items/{ORDER}.json"}
    titles = {asset["title"] for asset in documents[f"stac/items/{ITEM}.json"]["assets"].values()}
    assert f"PSScene/{ITEM}.json" in titles  # Planet's Item is an asset of ours
    order_titles = {asset["title"] for asset in documents[f"stac/items/{ORDER}.json"]["assets"].values()}
    assert order_titles == {"catalog.json", "PSScene/collection.json"}


def test_planet_delivering_files_where_our_catalog_goes_keeps_theirs_and_writes_none() -> None:
    files = {"stac/catalog.json": b'{"planet": true}', **scene_files()}
    rig = Rig(files)

    assert rig.land().complete

    assert rig.bucket.bodies[f"{BASE}/stac/catalog.json"] == b'{"planet": true}'
    assert not any(key.startswith(f"{BASE}/stac/items/") for key in rig.bucket.bodies)
    assert json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])["stac_catalog"] is None
