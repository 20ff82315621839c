"""What an order produces: its items, their output files, and the manifest that lists them.

Paths are relative to the order directory (`<order_id>/`), the form manifest.json uses; results on GET
prefix them with the order id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .content import DigestCache, Digests, digest_chunks, iter_inline

MANIFEST_PATH = "manifest.json"
# Basemap quads of the global monthly mosaics: 2048 x 2048 web-mercator quads (zoom 15, 4096 px each).
_QUADS_PER_AXIS = 2048
_MAX_MERCATOR_LATITUDE = 85.05112878


@dataclass(frozen=True)
class OutputFile:
    path: str
    media_type: str
    size: int
    annotations: Mapping[str, str]
    # Small bodies are held in memory; None means a generated body of `size` bytes (see content.py).
    inline: bytes | None = None


@dataclass(frozen=True)
class Item:
    """One scene, or one basemap quad: the unit that succeeds or fails as a whole."""

    item_id: str
    failure_hint: str
    files: tuple[OutputFile, ...]
    # Whether the item fails unless the outcome is forced (see orders.py).
    fails_naturally: bool = False


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def _scene_files(item_id: str, item_type: str, bundle: str, file_size: int) -> tuple[OutputFile, ...]:
    annotations = {"planet/item_id": item_id, "planet/item_type": item_type, "planet/bundle_type": bundle}
    metadata_json = _json_bytes(
        {
            "id": item_id,
            "type": "Feature",
            "properties": {"item_type": item_type, "product_bundle": bundle, "provider": "planet-fake"},
        }
    )
    metadata_xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<ps:EarthObservation><ps:identifier>{item_id}</ps:identifier>"
        f"<ps:itemType>{item_type}</ps:itemType></ps:EarthObservation>\n"
    ).encode()
    base = f"{item_type}/{item_id}"
    return (
        OutputFile(
            f"{base}_3B_AnalyticMS.tif",
            "image/tiff",
            file_size,
            {**annotations, "planet/asset_type": "ortho_analytic_4b"},
        ),
        OutputFile(
            f"{base}_3B_AnalyticMS_metadata.xml",
            "text/xml",
            len(metadata_xml),
            {**annotations, "planet/asset_type": "ortho_analytic_4b_xml"},
            metadata_xml,
        ),
        OutputFile(
            f"{base}_3B_udm2.tif",
            "image/tiff",
            file_size,
            {**annotations, "planet/asset_type": "ortho_udm2"},
        ),
        # The item's metadata is not an asset, so it carries no asset_type (as in real manifests).
        OutputFile(
            f"{base}_metadata.json", "application/json", len(metadata_json), annotations, metadata_json
        ),
    )


def _quad_of(lon: float, lat: float) -> tuple[int, int]:
    """Column and row (counted from the south) of the mosaic quad containing a point."""
    lat = max(-_MAX_MERCATOR_LATITUDE, min(_MAX_MERCATOR_LATITUDE, lat))
    column = math.floor((lon + 180) / 360 * _QUADS_PER_AXIS)
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * _QUADS_PER_AXIS
    row = _QUADS_PER_AXIS - 1 - math.floor(y)
    return _clamp_quad_index(column), _clamp_quad_index(row)


def _clamp_quad_index(index: int) -> int:
    return max(0, min(_QUADS_PER_AXIS - 1, index))


def _positions(coordinates: Any) -> Iterator[tuple[float, float]]:
    if (
        isinstance(coordinates, list)
        and len(coordinates) >= 2
        and all(isinstance(c, int | float) for c in coordinates[:2])
    ):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list):
        for child in coordinates:
            yield from _positions(child)


def quads_for_geometry(geometry: Mapping[str, Any]) -> list[str]:
    """Two quad ids for a geometry: the quads holding its bbox's south-west and north-east corners, or
    the south-west quad and its northern neighbour when both corners share a quad. For the Amsterdam
    polygon of Planet's docs this gives 1050-1374 and 1050-1375, the quad ids of the docs' quad example.

    Raises ValueError when the geometry holds no position.
    """
    positions = list(_positions(geometry.get("coordinates")))
    if not positions:
        raise ValueError("geometry has no coordinates")
    lons, lats = [p[0] for p in positions], [p[1] for p in positions]
    south_west = _quad_of(min(lons), min(lats))
    north_east = _quad_of(max(lons), max(lats))
    if north_east == south_west:
        north_east = (south_west[0], min(south_west[1] + 1, _QUADS_PER_AXIS - 1))
    return [f"{column}-{row}" for column, row in (south_west, north_east)]


def plan_items(source_type: str, products: list[dict[str, Any]], file_size: int) -> list[Item]:
    """Items in request order, each with its output files. `products` must be validated already."""
    items: list[Item] = []
    for product in products:
        if source_type == "basemaps":
            mosaic = product["mosaic_name"]
            quad_ids = product.get("quad_ids") or quads_for_geometry(product["geometry"])
            for quad_id in quad_ids:
                quad = OutputFile(
                    f"{mosaic}/{quad_id}_quad.tif",
                    "image/tiff",
                    file_size,
                    {"planet/item_id": quad_id, "planet/mosaic_name": mosaic},
                )
                item = Item(
                    quad_id,
                    f"Unable to deliver quad {quad_id} of mosaic {mosaic}: quad processing failed",
                    (quad,),
                    "fail" in quad_id or "fail" in mosaic,
                )
                items.append(item)
        else:
            item_type = product["item_type"]
            # A comma list names fallback bundles; the first one is what gets delivered here.
            bundle = product["product_bundle"].split(",")[0].strip()
            for item_id in product["item_ids"]:
                item = Item(
                    item_id,
                    f"Unable to deliver {item_type} item {item_id} with bundle {bundle}: processing failed",
                    _scene_files(item_id, item_type, bundle, file_size),
                    "fail" in item_id,
                )
                items.append(item)
    # The same scene or quad asked for twice is delivered once: its files would have the same paths.
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.files[0].path, item)
    return list(unique.values())


def file_digests(order_id: str, output: OutputFile, cache: DigestCache) -> Digests:
    if output.inline is not None:
        return digest_chunks(iter_inline(output.inline, 0, len(output.inline)))
    return cache.get(order_id, output.path, output.size)


def build_manifest(order_id: str, delivered: list[OutputFile], cache: DigestCache) -> bytes:
    """manifest.json for the delivered files, with real digests of the bytes served for each."""
    entries = []
    for output in delivered:
        digests = file_digests(order_id, output, cache)
        entries.append(
            {
                "path": output.path,
                "media_type": output.media_type,
                "size": output.size,
                "digests": {"md5": digests.md5, "sha256": digests.sha256},
                "annotations": dict(output.annotations),
            }
        )
    return _json_bytes({"name": "", "files": entries})
