"""Order tools: which ones exist per source type and what parameters each takes (create refuses the rest).

Sources: Planet's tools docs (docs.planet.com/develop/apis/orders/tools) and the SDK's order_request.py
builders and specs.py constants.
"""

from __future__ import annotations

from typing import Any

SCENE_TOOLS = frozenset(
    {"bandmath", "clip", "composite", "coregister", "file_format", "harmonize", "reproject", "tile", "toar"}
)
BASEMAP_TOOLS = frozenset({"bandmath", "clip", "merge", "reproject"})
FILE_FORMATS = ("COG", "PL_NITF")
# The SDK offers Sentinel-2; Planet's older tools docs also name PS2 (Dove-Classic) as a target.
HARMONIZE_TARGETS = ("Sentinel-2", "PS2")
PIXEL_TYPES = ("Auto", "8U", "16U", "16S", "32R")
KERNELS = ("near", "bilinear", "cubic", "cubicspline", "lanczos", "average", "mode")
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
BAND_KEYS = tuple(f"b{n}" for n in range(1, 16))


class ToolError(ValueError):
    """A malformed toolchain; the message names the tool."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_aoi(aoi: Any, required: bool) -> None:
    if aoi is None and not required:
        return
    if not isinstance(aoi, dict):
        raise ToolError("clip: aoi must be a GeoJSON Polygon or MultiPolygon")
    if aoi.get("type") == "ref":
        # A Features API reference, e.g. {"type": "ref", "content": "pl:features/my/collection/id"}.
        if not isinstance(aoi.get("content"), str) or not aoi["content"].startswith("pl:features/"):
            raise ToolError("clip: a ref aoi needs content 'pl:features/…'")
        return
    if aoi.get("type") not in GEOMETRY_TYPES or not isinstance(aoi.get("coordinates"), list):
        raise ToolError("clip: aoi must be a GeoJSON Polygon or MultiPolygon")
    if not aoi["coordinates"]:
        raise ToolError("clip: aoi has no coordinates")


def _check_params(name: str, params: dict[str, Any], source_type: str) -> None:
    if name == "clip":
        # A basemaps clip may leave aoi out: the product's geometry is used (SDK basemap-order example).
        _check_aoi(params.get("aoi"), required=source_type == "scenes")
    elif name == "file_format":
        if params.get("format") not in FILE_FORMATS:
            raise ToolError(f"file_format: format must be one of {', '.join(FILE_FORMATS)}")
    elif name == "reproject":
        projection = params.get("projection")
        if not isinstance(projection, str) or not projection.upper().startswith(("EPSG:", "WKT")):
            raise ToolError("reproject: projection must be a coordinate system such as 'EPSG:4326'")
        if "resolution" in params and not (_number(params["resolution"]) and params["resolution"] > 0):
            raise ToolError("reproject: resolution must be a positive number")
        if "kernel" in params and params["kernel"] not in KERNELS:
            raise ToolError(f"reproject: kernel must be one of {', '.join(KERNELS)}")
    elif name == "tile":
        size = params.get("tile_size")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ToolError("tile: tile_size must be a positive integer")
        template = params.get("name_template", "{tilex}_{tiley}.tif")
        try:
            str(template).format(tilex=0, tiley=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ToolError("tile: name_template may only use {tilex} and {tiley}") from exc
    elif name == "toar":
        factor = params.get("scale_factor", 10000)
        if not isinstance(factor, int) or isinstance(factor, bool) or factor <= 0:
            raise ToolError("toar: scale_factor must be a positive integer")
    elif name == "harmonize":
        if params.get("target_sensor") not in HARMONIZE_TARGETS:
            raise ToolError(f"harmonize: target_sensor must be one of {', '.join(HARMONIZE_TARGETS)}")
    elif name == "composite":
        if params.get("group_by", "order") not in ("order", "strip_id"):
            raise ToolError("composite: group_by must be 'order' or 'strip_id'")
    elif name == "coregister":
        if not isinstance(params.get("anchor_item"), str) or not params["anchor_item"]:
            raise ToolError("coregister: anchor_item must name an item of the order")
    elif name == "bandmath":
        _check_bandmath(params)


def _check_bandmath(params: dict[str, Any]) -> None:
    bands = [key for key in BAND_KEYS if key in params]
    if not bands or bands != list(BAND_KEYS[: len(bands)]):
        raise ToolError("bandmath: b1 is required and bands may not be skipped")
    if any(not isinstance(params[key], str) or not params[key] for key in bands):
        raise ToolError("bandmath: every band must be an expression string")
    if params.get("pixel_type", "Auto") not in PIXEL_TYPES:
        raise ToolError(f"bandmath: pixel_type must be one of {', '.join(PIXEL_TYPES)}")


def check_tools(tools: Any, source_type: str, item_ids: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """The toolchain as (name, parameters) pairs, in order. Raises ToolError."""
    if not isinstance(tools, list):
        raise ToolError("tools must be a list of tool objects")
    allowed = SCENE_TOOLS if source_type == "scenes" else BASEMAP_TOOLS
    chain: list[tuple[str, dict[str, Any]]] = []
    for tool in tools:
        if not isinstance(tool, dict) or len(tool) != 1:
            raise ToolError("each tool must be an object with exactly one key, the tool's name")
        ((name, params),) = tool.items()
        if name not in allowed:
            raise ToolError(f"Unsupported tool '{name}' for {source_type} orders")
        if not isinstance(params, dict):
            raise ToolError(f"{name}: parameters must be an object")
        if any(existing == name for existing, _ in chain):
            raise ToolError(f"{name}: a tool may appear only once in a toolchain")
        _check_params(name, params, source_type)
        if name == "coregister" and params["anchor_item"] not in item_ids:
            raise ToolError("coregister: anchor_item must name an item of the order")
        chain.append((name, params))
    return chain
