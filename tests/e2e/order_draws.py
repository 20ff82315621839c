"""Hypothesis strategies for orders Planet accepts and orders it refuses, from the fake's bundles table.

The facts come from ``local/planet_fake/bundles.json`` (the fake's table, derived from Planet's published
bundles spec): which item types exist and which bundles each offers. Tool parameters follow Planet's tools
docs as the fake checks them (``planet_fake/tools_spec.py``). A drawn order carries what it should end as:
the fake fails an item whose id contains ``fail``, delivers the fallback bundle to an id containing
``fallback`` (or fails it when there is no fallback), and fails every quad of a mosaic named ``…fail…``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

TABLE = json.loads(
    (Path(__file__).resolve().parents[2] / "local" / "planet_fake" / "bundles.json").read_text(
        encoding="utf-8"
    )
)
BUNDLES: dict[str, list[str]] = {name: sorted(b["assets"]) for name, b in TABLE["bundles"].items()}
ITEM_TYPES = sorted({t for types in BUNDLES.values() for t in types})
OFFERED = {t: sorted(b for b, types in BUNDLES.items() if t in types) for t in ITEM_TYPES}
MAX_ITEMS = 500


@dataclass
class Drawn:
    """A create body and what the fake Planet will make of it."""

    body: dict[str, Any]
    #: Item or quad ids (for a geometry cut: the mosaic name) that fail, each to be named by a hint.
    failing: list[str] = field(default_factory=list)
    #: Every requested item or quad id (geometry cuts excluded: their quads are chosen upstream).
    requested: list[str] = field(default_factory=list)
    #: item id -> the bundle it is delivered with when that is a fallback.
    fallbacks: dict[str, str] = field(default_factory=dict)
    #: A basemaps product cut by a geometry whose mosaic does not fail (its quads, chosen upstream, land).
    geometry_delivers: bool = False

    @property
    def expected_state(self) -> str:
        if not self.failing:
            return "success"
        partial = self.body.get("order_type") == "partial"
        delivers_some = bool(set(self.requested) - set(self.failing)) or self.geometry_delivers
        return "partial" if partial and delivers_some else "failed"

    @property
    def represented(self) -> list[str]:
        """Names each delivered file set must show: the requested ids, or with basemaps ``merge`` (one
        raster per mosaic instead of its quads) the mosaic names."""
        if any("merge" in tool for tool in self.body.get("tools", [])):
            return [p["mosaic_name"] for p in self.body["products"] if p["mosaic_name"] not in self.failing]
        return self.requested

    @property
    def kind(self) -> str:
        tools = [next(iter(t)) for t in self.body.get("tools", [])]
        delivery = self.body.get("delivery", {})
        parts = [self.body.get("source_type", "scenes"), self.body.get("order_type", "full"), *tools]
        if delivery:
            parts.append("single_zip" if delivery.get("single_archive") else "zip")
        if "metadata" in self.body:
            parts.append("stac")
        return "+".join(parts)


names = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters=" -_./", max_codepoint=0x24F),
    min_size=1,
    max_size=24,
).filter(lambda s: s.strip() != "")


def _polygon(lon: float, lat: float, size: float) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]


@st.composite
def aois(draw: st.DrawFn) -> dict[str, Any]:
    lon = draw(st.floats(-170, 170, allow_nan=False).map(lambda v: round(v, 4)))
    lat = draw(st.floats(-70, 70, allow_nan=False).map(lambda v: round(v, 4)))
    size = draw(st.sampled_from([0.001, 0.01, 0.05]))
    if draw(st.booleans()):
        return {"type": "Polygon", "coordinates": _polygon(lon, lat, size)}
    return {"type": "MultiPolygon", "coordinates": [_polygon(lon, lat, size), _polygon(lon + 1, lat, size)]}


def _bandmath() -> st.SearchStrategy[dict[str, Any]]:
    return st.integers(1, 4).flatmap(
        lambda bands: st.fixed_dictionaries(
            {f"b{n}": st.just(f"b{n}") for n in range(1, bands + 1)},
            optional={"pixel_type": st.sampled_from(["Auto", "8U", "16U", "16S", "32R"])},
        )
    )


def scene_tool(name: str, anchors: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """One valid scenes tool; ``anchors`` are the order's item ids (coregister must name one)."""
    params: st.SearchStrategy[dict[str, Any]] = {
        "clip": aois().map(lambda aoi: {"aoi": aoi}),
        "composite": st.sampled_from([{}, {"group_by": "order"}, {"group_by": "strip_id"}]),
        "file_format": st.sampled_from([{"format": "COG"}, {"format": "PL_NITF"}]),
        "harmonize": st.sampled_from([{"target_sensor": "Sentinel-2"}, {"target_sensor": "PS2"}]),
        "reproject": st.fixed_dictionaries(
            {"projection": st.sampled_from(["EPSG:4326", "EPSG:32633", "EPSG:3857"])},
            optional={
                "resolution": st.sampled_from([3, 10, 30.5]),
                "kernel": st.sampled_from(["near", "bilinear", "cubic"]),
            },
        ),
        "tile": st.fixed_dictionaries(
            {"tile_size": st.sampled_from([256, 1024, 2048])},
            optional={"name_template": st.sampled_from(["{tilex}_{tiley}.tif", "tile-{tilex}-{tiley}.tif"])},
        ),
        "toar": st.sampled_from([{}, {"scale_factor": 10000}, {"scale_factor": 1000}]),
        "bandmath": _bandmath(),
        "coregister": st.sampled_from(anchors or ["none"]).map(lambda anchor: {"anchor_item": anchor}),
    }[name]
    return params.map(lambda p: {name: p})


def basemap_tool(name: str) -> st.SearchStrategy[dict[str, Any]]:
    params: st.SearchStrategy[dict[str, Any]] = {
        "clip": st.one_of(st.just({}), aois().map(lambda aoi: {"aoi": aoi})),
        "merge": st.just({}),
        "reproject": st.sampled_from(
            [{"projection": "EPSG:4326"}, {"projection": "EPSG:3857", "kernel": "near"}]
        ),
        "bandmath": _bandmath(),
    }[name]
    return params.map(lambda p: {name: p})


@st.composite
def toolchains(draw: st.DrawFn, source_type: str, anchors: list[str]) -> list[dict[str, Any]]:
    """Up to three distinct tools in any order (Planet runs them as a chain, in the order given)."""
    names = (
        ["bandmath", "clip", "composite", "file_format", "harmonize", "reproject", "tile", "toar"]
        + (["coregister"] if anchors else [])
        if source_type == "scenes"
        else ["bandmath", "clip", "merge", "reproject"]
    )
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    if source_type == "scenes":
        return [draw(scene_tool(name, anchors)) for name in chosen]
    return [draw(basemap_tool(name)) for name in chosen]


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any] | None:
    """No delivery block (direct download) or zip archives: one per item, or one for the order."""
    choice = draw(st.sampled_from(["none", "zip", "single", "single_named"]))
    if choice == "none":
        return None
    if choice == "zip":
        return {"archive_type": "zip"} | draw(st.sampled_from([{}, {"single_archive": False}]))
    delivery: dict[str, Any] = {"archive_type": "zip", "single_archive": True}
    if choice == "single_named":
        delivery["archive_filename"] = draw(
            st.sampled_from(["{{name}}.zip", "{{order_id}}", "results_{{name}}_{{order_id}}.zip", "scenes"])
        )
    return delivery


@st.composite
def item_ids(draw: st.DrawFn, taken: set[str], can_fall_back: bool) -> list[str]:
    """1-3 fresh scene ids; some contain ``fail`` (the fake fails them) or ``fallback``."""
    markers = ["", "", "", "fail"] + (["fallback"] if can_fall_back else [])
    ids = []
    for _ in range(draw(st.integers(1, 3))):
        day = draw(st.integers(1, 28))
        serial = draw(st.integers(0, 999999))
        marker = draw(st.sampled_from(markers))
        item_id = f"202203{day:02d}_{serial:06d}" + (f"_{marker}" if marker else "") + "_2430"
        if item_id not in taken:
            taken.add(item_id)
            ids.append(item_id)
    return ids or [draw(st.just(f"20220301_{len(taken):06d}_2430"))]


@st.composite
def scenes_orders(draw: st.DrawFn) -> Drawn:
    taken: set[str] = set()
    drawn = Drawn({"name": draw(names)})
    if draw(st.booleans()):
        drawn.body["source_type"] = "scenes"
    products = []
    for _ in range(draw(st.integers(1, 2))):
        item_type = draw(st.sampled_from(ITEM_TYPES))
        offered = OFFERED[item_type]
        first = draw(st.sampled_from(offered))
        others = [b for b in offered if b != first]
        fallback = draw(st.sampled_from(others)) if others and draw(st.booleans()) else None
        bundles = [first, fallback] if fallback else [first]
        ids = draw(item_ids(taken, can_fall_back=True))
        for item_id in ids:
            if "fail" in item_id or ("fallback" in item_id and fallback is None):
                drawn.failing.append(item_id)
            elif "fallback" in item_id:
                drawn.fallbacks[item_id] = bundles[1]
        drawn.requested += ids
        spelled = ",".join(bundles) if draw(st.booleans()) else ", ".join(bundles)
        products.append({"item_ids": ids, "item_type": item_type, "product_bundle": spelled})
    drawn.body["products"] = products
    _common(draw, drawn, "scenes", anchors=[i for i in drawn.requested if i not in drawn.failing])
    if draw(st.integers(0, 2)) == 0:
        drawn.body["metadata"] = {"stac": {}}
    return drawn


@st.composite
def basemaps_orders(draw: st.DrawFn) -> Drawn:
    drawn = Drawn({"name": draw(names), "source_type": "basemaps"})
    products = []
    for index in range(draw(st.integers(1, 2))):
        month = draw(st.integers(1, 12))
        failing_mosaic = draw(st.integers(0, 5)) == 0
        mosaic = f"global_monthly_2022_{month:02d}_{'fail_' if failing_mosaic else ''}mosaic{index}"
        if draw(st.booleans()):
            quads = draw(
                st.lists(
                    st.tuples(st.integers(0, 2047), st.integers(0, 2047), st.integers(0, 6)).map(
                        lambda q: f"{q[0]}-{q[1]}" + ("-fail" if q[2] == 0 else "")
                    ),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            products.append({"mosaic_name": mosaic, "quad_ids": quads})
            drawn.requested += quads
            drawn.failing += [q for q in quads if failing_mosaic or "fail" in q]
        else:
            products.append({"mosaic_name": mosaic, "geometry": draw(aois())})
            if failing_mosaic:
                drawn.failing.append(mosaic)
            else:
                drawn.geometry_delivers = True
    drawn.body["products"] = products
    _common(draw, drawn, "basemaps", anchors=[])
    return drawn


def _common(draw: st.DrawFn, drawn: Drawn, source_type: str, anchors: list[str]) -> None:
    """order_type, tools and delivery; never notifications (another suite owns them)."""
    order_type = draw(st.sampled_from([None, "full", "partial"]))
    if order_type:
        drawn.body["order_type"] = order_type
    tools = draw(toolchains(source_type, anchors))
    if tools:
        drawn.body["tools"] = tools
    delivery = draw(deliveries())
    if delivery:
        drawn.body["delivery"] = delivery


valid_orders = st.one_of(scenes_orders(), scenes_orders(), basemaps_orders())


# --- orders Planet refuses ------------------------------------------------------------------------------


@dataclass
class Refused:
    """A create body Planet refuses, and the field (a dotted prefix) the 400 must name."""

    body: dict[str, Any]
    field: str
    why: str


def _unknown_name(known: list[str]) -> st.SearchStrategy[str]:
    lowered = {name.lower() for name in known}
    return st.text(string.ascii_letters + string.digits + "_", min_size=3, max_size=16).filter(
        lambda s: s.lower() not in lowered
    )


@st.composite
def refused_orders(draw: st.DrawFn) -> Refused:
    """A valid scenes order with one thing Planet refuses at create."""
    base = draw(scenes_orders()).body
    base.pop("tools", None)
    products = base["products"]
    position = draw(st.integers(0, len(products) - 1))
    product = products[position]
    where = f"products.{position}"
    kind = draw(
        st.sampled_from(
            [
                "unknown item type",
                "unknown bundle",
                "unknown fallback bundle",
                "bundle not offered",
                "too many items",
                "unknown tool",
                "tool with two keys",
                "tool parameters not an object",
                "clip without aoi",
                "file_format not COG or PL_NITF",
                "reproject without projection",
                "basemaps tool on scenes",
                "archive type not zip",
            ]
        )
    )
    field_name = "tools.0"
    if kind == "unknown item type":
        product["item_type"] = draw(_unknown_name(ITEM_TYPES))
        field_name = f"{where}.item_type"
    elif kind == "unknown bundle":
        product["product_bundle"] = draw(_unknown_name(list(BUNDLES)))
        field_name = f"{where}.product_bundle"
    elif kind == "unknown fallback bundle":
        product["product_bundle"] = (
            product["product_bundle"].split(",")[0] + "," + draw(_unknown_name(list(BUNDLES)))
        )
        field_name = f"{where}.product_bundle"
    elif kind == "bundle not offered":
        not_offered = sorted(set(BUNDLES) - set(OFFERED[product["item_type"]]))
        product["product_bundle"] = draw(st.sampled_from(not_offered))
        field_name = f"{where}.product_bundle"
    elif kind == "too many items":
        count = draw(st.integers(MAX_ITEMS + 1, 600))
        product["item_ids"] = [f"20220301_{n:06d}_2430" for n in range(count)]
        field_name = "products"
    elif kind == "archive type not zip":
        base["delivery"] = {"archive_type": draw(st.sampled_from(["tar", "ZIP", "gzip", ""]))}
        field_name = "delivery.archive_type"
    else:
        base["tools"] = [
            {
                "unknown tool": {
                    draw(
                        _unknown_name(
                            [
                                "bandmath",
                                "clip",
                                "composite",
                                "coregister",
                                "file_format",
                                "harmonize",
                                "reproject",
                                "tile",
                                "toar",
                                "merge",
                            ]
                        )
                    ): {}
                },
                "tool with two keys": {"toar": {}, "file_format": {"format": "COG"}},
                "tool parameters not an object": {
                    draw(st.sampled_from(["toar", "clip", "tile"])): draw(
                        st.sampled_from([None, 5, "COG", [1]])
                    )
                },
                "clip without aoi": {"clip": {}},
                "file_format not COG or PL_NITF": {
                    "file_format": {"format": draw(st.sampled_from(["JPEG", "cog", ""]))}
                },
                "reproject without projection": {
                    "reproject": draw(st.sampled_from([{}, {"kernel": "near"}]))
                },
                "basemaps tool on scenes": {"merge": {}},
            }[kind]
        ]
    return Refused(base, field_name, kind)
