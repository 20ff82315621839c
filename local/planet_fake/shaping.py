"""How tools, STAC metadata and zip delivery change what an order delivers (README "Outputs")."""

from __future__ import annotations

import functools
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from . import catalog
from .content import digest_chunks, iter_generated, iter_inline
from .outputs import (
    MANIFEST_PATH,
    STAC_VERSION,
    Item,
    LazyBody,
    OutputFile,
    json_bytes,
    manifest_entries,
    text_file,
    with_suffix,
)

# Tools that add a suffix to the names of the files they change (clip's `_clip` is observed in real
# deliveries; bandmath's `_bandmath` is documented by the SDK; the others are inferred).
_SUFFIXES = {
    "clip": "_clip",
    "reproject": "_reproject",
    "harmonize": "_harmonized",
    "toar": "_toar",
    "coregister": "_coregistered",
    "bandmath": "_bandmath",
}
# Tools that change every asset file (raster and sidecar) versus only the analytic raster.
_ALL_ASSETS = frozenset({"clip", "reproject"})
# Bytes of each raster inside a zip archive: archives are built in memory, so their members stay small.
ZIP_MEMBER_BYTES = 16 * 1024
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
Chain = list[tuple[str, dict[str, Any]]]


def _is_asset(output: OutputFile) -> bool:
    return "planet/asset_type" in output.annotations or output.path.endswith("_quad.tif")


def _is_analytic_raster(output: OutputFile) -> bool:
    asset_type = output.annotations.get("planet/asset_type", "quad")
    return catalog.is_imagery(output.path) and "udm" not in asset_type and "visual" not in asset_type


def _tiles(output: OutputFile, params: dict[str, Any]) -> list[OutputFile]:
    """Four tiles (2 x 2) of one raster, in a directory named after it (inferred layout)."""
    directory = output.path.rsplit(".", 1)[0]
    template = str(params.get("name_template", "{tilex}_{tiley}.tif"))
    size = max(1, output.generated_size // 4)
    return [
        replace(output, path=f"{directory}/{template.format(tilex=x, tiley=y)}", generated_size=size)
        for x in (0, 1)
        for y in (0, 1)
    ]


def _apply_tool(files: list[OutputFile], name: str, params: dict[str, Any]) -> list[OutputFile]:
    if name in _SUFFIXES:
        if name == "bandmath":
            # "One bandmath imagery output file is produced for each product bundle"; UDM, RPC and XML
            # files pass through (SDK docstring).
            analytic = [f for f in files if _is_analytic_raster(f)]
            rest = [f for f in files if not _is_analytic_raster(f)]
            return (
                [replace(analytic[0], path=with_suffix(analytic[0].path, "_bandmath"))] if analytic else []
            ) + rest
        changed = _is_asset if name in _ALL_ASSETS else _is_analytic_raster
        return [replace(f, path=with_suffix(f.path, _SUFFIXES[name])) if changed(f) else f for f in files]
    if name == "file_format" and params.get("format") == "PL_NITF":
        return [
            replace(f, path=f.path[:-4] + ".ntf", media_type=catalog.media_type(".ntf"))
            if f.path.endswith(".tif")
            else f
            for f in files
        ]
    if name == "tile":
        return [tile for f in files for tile in (_tiles(f, params) if f.path.endswith(".tif") else [f])]
    return files  # file_format COG keeps `.tif` names; composite and merge act on the whole order


def _composite(items: list[Item], file_size: int) -> list[Item]:
    """Documented layout: composite.tif and composite_udm.tif at the order root, and each item's
    metadata.json and XML metadata at the root too."""
    kept = []
    has_udm = False
    for item in items:
        has_udm |= any("udm" in f.annotations.get("planet/asset_type", "") for f in item.files)
        root_files = [
            replace(f, path=f.path.rsplit("/", 1)[-1])
            for f in item.files
            if f.path.endswith((".json", ".xml"))
        ]
        kept.append(replace(item, files=tuple(root_files)))
    first = items[0]
    annotations = {"planet/item_type": first.item_type, "planet/bundle_type": first.bundle}
    outputs = [OutputFile("composite.tif", "image/tiff", annotations, file_size)]
    if has_udm:
        outputs.append(OutputFile("composite_udm.tif", "image/tiff", annotations, file_size))
    hint = "Unable to deliver the composite: no item could be processed"
    return [*kept, Item("composite", hint, tuple(outputs), order_level=True)]


def _merge(items: list[Item], file_size: int) -> list[Item]:
    """Basemaps merge: one raster per mosaic instead of its quads (file name inferred)."""
    mosaics = list(dict.fromkeys(item.item_type for item in items))
    merged = [
        Item(
            f"{mosaic}_merged",
            f"Unable to merge quads of mosaic {mosaic}",
            (
                OutputFile(
                    f"{mosaic}/{mosaic}_merged.tif", "image/tiff", {"planet/mosaic_name": mosaic}, file_size
                ),
            ),
            order_level=True,
        )
        for mosaic in mosaics
    ]
    return [replace(item, files=()) for item in items] + merged


def apply_tools(items: list[Item], chain: Chain, file_size: int) -> list[Item]:
    shaped = []
    for item in items:
        files = list(item.files)
        for name, params in chain:
            files = _apply_tool(files, name, params)
        shaped.append(replace(item, files=tuple(files)))
    names = [name for name, _ in chain]
    if "composite" in names and shaped:
        return _composite(shaped, file_size)
    if "merge" in names and shaped:
        return _merge(shaped, file_size)
    return shaped


# --- STAC ---------------------------------------------------------------------------------------------


def _acquired(item_id: str) -> str:
    """A STAC Item needs a datetime (or a start and end): the acquisition day Planet's scene ids begin with
    (`20220304_093300_37_2430`), else the Unix epoch [Inf: the fake knows no acquisition times]."""
    try:
        return datetime.strptime(item_id[:8], "%Y%m%d").strftime("%Y-%m-%dT00:00:00Z")
    except ValueError:
        return "1970-01-01T00:00:00Z"


def _stac_item(item: Item) -> OutputFile:
    directory = item.item_type
    assets = {
        f.annotations.get("planet/asset_type", f.path.rsplit("/", 1)[-1]): {
            "href": "./" + f.path.removeprefix(directory + "/"),
            "type": f.media_type,
        }
        for f in item.files
    }
    document = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "id": item.item_id,
        "geometry": None,
        "properties": {
            "datetime": _acquired(item.item_id),
            "pl:item_type": item.item_type,
            "pl:bundle_type": item.bundle,
        },
        "assets": assets,
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "collection", "href": "./collection.json", "type": "application/json"},
            {"rel": "parent", "href": "./collection.json", "type": "application/json"},
        ],
        "collection": item.item_type,
    }
    annotations = {"planet/item_id": item.item_id, "planet/item_type": item.item_type}
    return text_file(f"{directory}/{item.item_id}.json", json_bytes(document), annotations)


def add_stac(items: list[Item], order_name: str) -> list[Item]:
    """A STAC Item per scene, a Collection per item type, and a Catalog at the order root (inferred)."""
    scenes = [item for item in items if not item.order_level and item.files and item.item_type]
    shaped = [
        replace(item, files=(*item.files, _stac_item(item))) if item in scenes else item for item in items
    ]
    if not scenes:
        return shaped
    item_types = list(dict.fromkeys(item.item_type for item in scenes))
    catalog_doc = {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "order",
        "description": order_name,
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
        + [
            {"rel": "child", "href": f"./{t}/collection.json", "type": "application/json"} for t in item_types
        ],
    }
    files = [text_file("catalog.json", json_bytes(catalog_doc), {})]
    for item_type in item_types:
        links = [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ] + [
            {"rel": "item", "href": f"./{item.item_id}.json", "type": "application/json"}
            for item in scenes
            if item.item_type == item_type
        ]
        collection = {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "id": item_type,
            "description": f"{item_type} items of the order",
            "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "links": links,
        }
        files.append(text_file(f"{item_type}/collection.json", json_bytes(collection), {}))
    hint = "Unable to deliver the order's STAC catalog"
    return [*shaped, Item("stac_catalog", hint, tuple(files), order_level=True)]


# --- zip archives -----------------------------------------------------------------------------------


def _member_bytes(order_id: str, output: OutputFile) -> bytes:
    body = output.data()
    if body is not None:
        return body
    return b"".join(
        iter_generated(order_id, "zip/" + output.path, 0, min(output.generated_size, ZIP_MEMBER_BYTES))
    )


def _zip(order_id: str, members: list[OutputFile]) -> bytes:
    """A real zip: the files in their usual layout plus a manifest.json of them at the archive root (the
    QGIS plugin reads `manifest.json` inside each archive it downloads)."""
    bodies = [(f, _member_bytes(order_id, f)) for f in members]
    inner = [replace(f, inline=body, lazy=None) for f, body in bodies]
    entries = manifest_entries(
        inner, lambda f: digest_chunks(iter_inline(f.inline or b"", 0, len(f.inline or b"")))
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            zipfile.ZipInfo(MANIFEST_PATH, _ZIP_DATE), json_bytes({"name": "", "files": entries})
        )
        for output, body in bodies:
            archive.writestr(zipfile.ZipInfo(output.path, _ZIP_DATE), body)
    return buffer.getvalue()


def _archive(
    order_id: str, path: str, members: list[OutputFile], annotations: Mapping[str, str]
) -> OutputFile:
    lazy = LazyBody(functools.partial(_zip, order_id, members))  # a partial pickles; a lambda would not
    return OutputFile(path, "application/zip", annotations, lazy=lazy)


def archive_name(template: str, name: str, order_id: str) -> str:
    rendered = re.sub(r"\{\{\s*name\s*\}\}", name, template)
    rendered = re.sub(r"\{\{\s*order_id\s*\}\}", order_id, rendered).replace("/", "_")
    return rendered if rendered.lower().endswith(".zip") else rendered + ".zip"


def zip_items(
    items: list[Item], order_id: str, order_name: str, delivery: dict[str, Any], failing: frozenset[str]
) -> list[Item]:
    """Wrap delivered files in archives: one per item (the default), or one for the whole order with
    `single_archive`, named from `archive_filename`."""
    if delivery.get("single_archive"):
        template = delivery.get("archive_filename") or "{{order_id}}.zip"
        members = [f for item in items if item.item_id not in failing for f in item.files]
        archive = _archive(order_id, archive_name(template, order_name, order_id), members, {})
        emptied = [replace(item, files=()) for item in items]
        return [
            *emptied,
            Item("archive", "Unable to deliver the order's archive", (archive,), order_level=True),
        ]
    wrapped = []
    for item in items:
        if not item.files or item.order_level:
            wrapped.append(item)
            continue
        annotations = {
            "planet/item_id": item.item_id,
            "planet/item_type": item.item_type,
            "planet/bundle_type": item.bundle,
        }
        name = f"{item.item_id}_{item.bundle}.zip" if item.bundle else f"{item.item_id}.zip"
        archive = _archive(order_id, name, list(item.files), annotations)
        wrapped.append(replace(item, files=(archive,)))
    return wrapped
