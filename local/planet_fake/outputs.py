"""What an order produces: its items, their output files, and the manifest that lists them.

Paths are relative to the order directory (`<order_id>/`), the form manifest.json uses; results on GET
prefix them with the order id. Which files an item yields follows its item type and bundle (catalog.py);
tools rename, replace or merge them; zip delivery wraps them in archives (archives.py); a STAC request
adds STAC documents. README "Outputs" lists the rules and their sources.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import catalog
from .content import DigestCache, Digests, digest_chunks, iter_inline

MANIFEST_PATH = "manifest.json"
# Basemap quads of the global monthly mosaics: 2048 x 2048 web-mercator quads (zoom 15, 4096 px each).
_QUADS_PER_AXIS = 2048
_MAX_MERCATOR_LATITUDE = 85.05112878
# An item whose id contains this lacks some asset of the first bundle it asks for, so a fallback bundle
# (if any) is delivered instead; without one the item fails.
FALLBACK_MARKER = "fallback"
STAC_VERSION = "1.0.0"


class LazyBody:
    """Bytes built on first use, once, whichever thread asks first (zip archives)."""

    def __init__(self, build: Callable[[], bytes]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._data: bytes | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Orders are pickled for the local stack's restart snapshot: the recipe goes, not the lock, nor the
        # built bytes (rebuilt, identical, on first use after a restart).
        return {"build": self._build}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["build"])  # type: ignore[misc]

    def get(self) -> bytes:
        with self._lock:
            if self._data is None:
                self._data = self._build()
            return self._data


@dataclass(frozen=True)
class OutputFile:
    path: str
    media_type: str
    annotations: Mapping[str, str]
    # A generated body of this many bytes (see content.py), unless the body is inline or lazy.
    generated_size: int = 0
    inline: bytes | None = None
    lazy: LazyBody | None = field(default=None, compare=False)

    @property
    def generated(self) -> bool:
        return self.inline is None and self.lazy is None

    def data(self) -> bytes | None:
        """The body if it is held (inline) or built (lazy); None for a generated body."""
        if self.lazy is not None:
            return self.lazy.get()
        return self.inline

    @property
    def size(self) -> int:
        body = self.data()
        return self.generated_size if body is None else len(body)


@dataclass(frozen=True)
class Item:
    """One scene or basemap quad, or an order-level output (composite, merge, STAC catalog, single
    archive): the unit that succeeds or fails as a whole."""

    item_id: str
    failure_hint: str
    files: tuple[OutputFile, ...]
    # Whether the item fails unless the outcome is forced (see orders.py).
    fails_naturally: bool = False
    # Order-level outputs exist once the order delivers anything; they fail only if the order fails.
    order_level: bool = False
    item_type: str = ""
    bundle: str = ""


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def with_suffix(path: str, suffix: str) -> str:
    """`a/b_3B_udm2.tif` + `_clip` -> `a/b_3B_udm2_clip.tif` (observed for clip: `…_metadata_clip.xml`)."""
    directory, _, name = path.rpartition("/")
    if name.upper().endswith("_RPC.TXT"):
        stem, extension = name[:-8], name[-8:]
    else:
        stem, dot, ext = name.rpartition(".")
        stem, extension = (stem, dot + ext) if dot else (name, "")
    return f"{directory}/{stem}{suffix}{extension}" if directory else f"{stem}{suffix}{extension}"


def text_file(path: str, body: bytes, annotations: Mapping[str, str]) -> OutputFile:
    return OutputFile(path, catalog.media_type(path), annotations, inline=body)


def _asset_body(item_id: str, item_type: str, asset_type: str, path: str) -> bytes:
    if path.endswith(".xml"):
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ps:EarthObservation><ps:identifier>{item_id}</ps:identifier>"
            f"<ps:itemType>{item_type}</ps:itemType><ps:assetType>{asset_type}</ps:assetType>"
            "</ps:EarthObservation>\n"
        ).encode()
    if path.endswith(".json"):
        return json_bytes({"id": item_id, "item_type": item_type, "asset_type": asset_type})
    return f"{item_id} {asset_type}\n".encode()


def scene_files(item_id: str, item_type: str, bundle: str, file_size: int) -> list[OutputFile]:
    """The files of one scene delivered with one bundle, in the default layout."""
    annotations = {"planet/item_id": item_id, "planet/item_type": item_type, "planet/bundle_type": bundle}
    files = []
    for asset_type in catalog.bundle_assets(bundle, item_type) or ():
        path = f"{item_type}/{catalog.asset_filename(item_type, item_id, asset_type)}"
        asset_annotations = {**annotations, "planet/asset_type": asset_type}
        if catalog.is_imagery(path):
            files.append(OutputFile(path, catalog.media_type(path), asset_annotations, file_size))
        else:
            files.append(
                text_file(path, _asset_body(item_id, item_type, asset_type, path), asset_annotations)
            )
    metadata = json_bytes(
        {
            "id": item_id,
            "type": "Feature",
            "properties": {"item_type": item_type, "product_bundle": bundle, "provider": "planet-fake"},
        }
    )
    # The item's metadata is not an asset, so it carries no asset_type (as in real manifests).
    files.append(text_file(f"{item_type}/{item_id}_metadata.json", metadata, annotations))
    return files


def choose_bundle(item_id: str, item_type: str, bundles: list[str]) -> str | None:
    """The first bundle of `product_bundle`'s list that the item can be delivered with."""
    available = bundles[1:] if FALLBACK_MARKER in item_id else bundles
    return available[0] if available else None


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
    """Items in request order, each with its files in the default layout (before tools and archives).
    `products` must be validated already."""
    items: dict[str, Item] = {}
    for product in products:
        if source_type == "basemaps":
            mosaic = product["mosaic_name"]
            quad_ids = product.get("quad_ids") or quads_for_geometry(product["geometry"])
            for quad_id in quad_ids:
                quad = OutputFile(
                    f"{mosaic}/{quad_id}_quad.tif",
                    "image/tiff",
                    {"planet/item_id": quad_id, "planet/mosaic_name": mosaic},
                    file_size,
                )
                hint = f"Unable to deliver quad {quad_id} of mosaic {mosaic}: quad processing failed"
                fails = "fail" in quad_id or "fail" in mosaic
                # The same quad asked for twice is delivered once: its files would have the same paths.
                items.setdefault(quad.path, Item(quad_id, hint, (quad,), fails, item_type=mosaic))
            continue
        item_type = product["item_type"]
        bundles = [b.strip() for b in product["product_bundle"].split(",")]
        for item_id in product["item_ids"]:
            key = f"{item_type}/{item_id}"
            bundle = choose_bundle(item_id, item_type, bundles)
            if bundle is None:
                hint = (
                    f"Unable to deliver {item_type} item {item_id}: assets of bundle {bundles[0]} "
                    "are not available"
                )
                items.setdefault(key, Item(item_id, hint, (), True, item_type=item_type, bundle=bundles[0]))
                continue
            hint = f"Unable to deliver {item_type} item {item_id} with bundle {bundle}: processing failed"
            files = tuple(scene_files(item_id, item_type, bundle, file_size))
            items.setdefault(
                key, Item(item_id, hint, files, "fail" in item_id, item_type=item_type, bundle=bundle)
            )
    return list(items.values())


def retarget(item: Item, files: list[OutputFile]) -> Item:
    return replace(item, files=tuple(files))


def file_digests(order_id: str, output: OutputFile, cache: DigestCache) -> Digests:
    body = output.data()
    if body is not None:
        return digest_chunks(iter_inline(body, 0, len(body)))
    return cache.get(order_id, output.path, output.generated_size)


def manifest_entries(
    delivered: list[OutputFile], digests: Callable[[OutputFile], Digests]
) -> list[dict[str, Any]]:
    entries = []
    for output in delivered:
        digest = digests(output)
        entries.append(
            {
                "path": output.path,
                "media_type": output.media_type,
                "size": output.size,
                "digests": {"md5": digest.md5, "sha256": digest.sha256},
                "annotations": dict(output.annotations),
            }
        )
    return entries


def build_manifest(order_id: str, delivered: list[OutputFile], cache: DigestCache) -> bytes:
    """manifest.json for the delivered files, with real digests of the bytes served for each."""
    entries = manifest_entries(delivered, lambda output: file_digests(order_id, output, cache))
    return json_bytes({"name": "", "files": entries})
