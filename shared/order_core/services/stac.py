"""A STAC catalog of a landed order, so that pystac or odc-stac opens the order straight from S3.

``stac/catalog.json`` in the order's folder (named in ``delivery.json``), and one Item per delivered Planet
item in ``stac/items/`` (``planet/item_id`` of the manifest's annotations, or a file named
``<item id>_…`` or ``<item id>.…``), with one asset per landed file: an absolute ``s3://bucket/key``
href, the manifest's media type, and the File extension's ``file:size`` and ``file:checksum`` (the sha256
as a multihash). Files of no item (a composite, say) form one Item named after the order. Geometry, bbox
and datetime come from the item's ``<item id>_metadata.json`` (Planet's item metadata, a GeoJSON Feature);
without one the Item has a null geometry (allowed by STAC) and the order's creation time.

A zip archive is one asset of each Item it holds (role ``archive``); each member gets an asset too, whose
href is the archive URL GDAL and rasterio read (``zip+s3://bucket/archive.zip!/member``).

The catalog is ABSOLUTE_PUBLISHED: every document has a self link and absolute hrefs, so an Item read on its
own (copied into a STAC API, or opened by URL) still resolves. pystac is imported here, lazily: building a
catalog is the only thing that needs it, and the API's cold start never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The catalog's folder in the order's: Planet's own STAC delivery puts a ``catalog.json`` at the order's
#: root, so ours keeps to a folder of its own.
STAC_FOLDER = "stac"
CATALOG = f"{STAC_FOLDER}/catalog.json"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


@dataclass(frozen=True)
class StacFile:
    """One landed file (or archive member) as the catalog describes it."""

    path: str
    href: str
    size: int
    sha256: str
    media_type: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
    #: A zip archive (its members are listed as files of their own, with ``in_archive`` its href).
    archive: bool = False
    in_archive: str | None = None


@dataclass(frozen=True)
class StacOrder:
    order_id: str
    name: str
    upstream_order_id: str | None
    created_on: datetime
    #: ``s3://bucket/<order folder>``, where ``catalog.json`` goes.
    root: str
    files: list[StacFile]
    #: ``<item id>_metadata.json`` documents by item id (geometry, ``properties.acquired``).
    item_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def multihash_sha256(hex_digest: str) -> str:
    """``file:checksum``: a multihash, sha2-256 code 0x12 and length 0x20 before the digest."""
    return "1220" + hex_digest


def metadata_item_id(path: str) -> str | None:
    """The item id of a ``<item id>_metadata.json`` file."""
    name = path.rsplit("/", 1)[-1]
    return name.removesuffix("_metadata.json") if name.endswith("_metadata.json") else None


def group_by_item(files: Iterable[StacFile], fallback: str) -> dict[str, list[StacFile]]:
    """Files by item id: the manifest's annotation, else a known item id the file name starts with (then
    ``_`` or ``.``: ``<id>_metadata.json``, Planet's STAC Item ``<id>.json``), else ``fallback`` (the order's
    own Item)."""
    files = list(files)
    known = {str(f.annotations["planet/item_id"]) for f in files if f.annotations.get("planet/item_id")}
    known |= {item for f in files if (item := metadata_item_id(f.path))}
    groups: dict[str, list[StacFile]] = {}
    for file in files:
        item_id = file.annotations.get("planet/item_id")
        if not item_id:
            name = file.path.rsplit("/", 1)[-1]
            longest_first = sorted(known, key=len, reverse=True)
            item_id = next((k for k in longest_first if name.startswith((k + "_", k + "."))), None)
        groups.setdefault(str(item_id or fallback), []).append(file)
    return groups


def _coordinates(value: Any) -> Iterator[tuple[float, float]]:
    if isinstance(value, list | tuple) and len(value) >= 2 and all(isinstance(v, int | float) for v in value):
        yield float(value[0]), float(value[1])
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _coordinates(inner)


def bbox_of(geometry: dict[str, Any] | None) -> list[float] | None:
    if not geometry:
        return None
    parts = geometry.get("geometries") if geometry.get("type") == "GeometryCollection" else [geometry]
    points = [point for part in parts or [] for point in _coordinates(part.get("coordinates"))]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def _acquired(metadata: dict[str, Any]) -> datetime | None:
    value = (metadata.get("properties") or {}).get("acquired")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _roles(file: StacFile) -> list[str]:
    if file.archive:
        return ["archive"]
    media = (file.media_type or "").lower()
    if media.startswith("image/"):
        return ["data"]
    return ["metadata"]


def _asset_key(file: StacFile, taken: set[str]) -> str:
    base = str(file.annotations.get("planet/asset_type") or file.path.rsplit("/", 1)[-1])
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def build_catalog(order: StacOrder) -> dict[str, dict[str, Any]]:
    """The catalog's documents by href: ``stac/catalog.json`` under ``order.root``, Items in
    ``stac/items/``."""
    import pystac
    from pystac.extensions.file import FileExtension
    from pystac.layout import CustomLayoutStrategy

    catalog = pystac.Catalog(
        id=order.order_id,
        title=order.name or order.order_id,
        description=(
            f"Planet order {order.upstream_order_id or ''} ({order.name}), landed and verified by the "
            "gateway: every asset's size and sha256 are the ones Planet's manifest gives."
        ),
        catalog_type=pystac.CatalogType.ABSOLUTE_PUBLISHED,
    )
    archives = {f.href: f for f in order.files if f.archive}
    items = group_by_item([f for f in order.files if not f.archive], order.order_id)
    held = {f.in_archive for group in items.values() for f in group}
    for href, archive in archives.items():
        if href not in held:  # an archive of no item's files: the order's own Item lists it
            items.setdefault(order.order_id, []).append(archive)
    for item_id in sorted(items):
        metadata = order.item_metadata.get(item_id, {})
        geometry = metadata.get("geometry") if isinstance(metadata.get("geometry"), dict) else None
        bbox = bbox_of(geometry)
        if bbox is None:
            geometry = None
        files = items[item_id]
        properties: dict[str, Any] = {}
        item_type = next((f.annotations.get("planet/item_type") for f in files if f.annotations), None)
        if item_type:
            properties["planet:item_type"] = item_type
        item = pystac.Item(
            id=item_id,
            geometry=geometry,
            bbox=bbox,
            datetime=_acquired(metadata) or order.created_on,
            properties=properties,
        )
        taken: set[str] = set()
        holding = sorted({f.in_archive for f in files if f.in_archive and f.in_archive in archives})
        for file in [*(archives[href] for href in holding), *files]:
            asset = pystac.Asset(
                href=file.href,
                title=file.path,
                media_type=file.media_type or ("application/zip" if file.archive else None),
                roles=_roles(file),
            )
            item.add_asset(_asset_key(file, taken), asset)
            extension = FileExtension.ext(asset, add_if_missing=True)
            extension.size = file.size
            extension.checksum = multihash_sha256(file.sha256)
        catalog.add_item(item)

    root = order.root.rstrip("/")
    strategy = CustomLayoutStrategy(
        item_func=lambda item, _parent: f"{root}/{STAC_FOLDER}/items/{item.id}.json"
    )
    catalog.normalize_hrefs(root, strategy=strategy)
    catalog.set_self_href(f"{root}/{CATALOG}")
    documents = {f"{root}/{CATALOG}": catalog.to_dict(include_self_link=True)}
    for stac_item in catalog.get_items():
        item_href = stac_item.get_self_href()
        assert item_href is not None
        documents[item_href] = stac_item.to_dict(include_self_link=True)
    return documents
