"""Pydantic models of Planet's Orders API v2 wire JSON, and Planet's 400 error shape.

Two directions, two policies:

* **What we send** (``OrderRequest`` and everything under it) is strict. Types are not coerced (``"true"``
  is not a boolean, ``"5"`` is not an integer) so that ``to_wire()`` gives back exactly the JSON the client
  sent, minus explicit nulls, plus ``source_type``/``order_type`` when they were omitted.
* **What Planet returns** (``PlanetOrder``, ``ResultLink``, ``Manifest``) is lenient: unknown fields are
  ignored, because Planet adds response fields without notice and a poller must not break on them.

Unknown request fields, the forward-compatibility call: objects we model (the order itself, products,
delivery and its destinations, notifications, hosting, tool names) **reject** unknown keys. The gateway
accepts an order and submits it to Planet later, so a misspelt optional block (``"notification"``,
``"delivry"``, a destination's ``"path_prefx"``) would otherwise be dropped silently and the client would pay
for an order delivered somewhere they did not intend, with no synchronous error to tell them. The price is
that a field Planet adds must be added here (one line) before clients can use it through the gateway.
Where Planet's schema is open or still moving we pass through untouched instead: ``metadata``,
``delivery.layout``, the parameters of tools other than clip/file_format/reproject/harmonize, unknown
parameters of those four, and GeoJSON foreign members such as ``bbox``.

Decisions where the reference is silent: a basemaps ``clip`` may omit ``aoi`` (Planet's own basemaps example
sends ``{"clip": {}}``, clipping to the product geometry) while a scenes ``clip`` must carry one; an empty
``order_ids`` list is not a valid bulk cancel (see ``PlanetClient.cancel_orders``). Checks stay structural
and never stricter than Planet: every shape the SDK's request builders produce is accepted (coordinates are
not range-checked, a clip AOI may be a Feature reference, ``s3_compatible.use_path_style`` is optional).

The tolerant reader: in a response, unknown fields are ignored, a ``null`` counts as absent, and an order
``state`` we have never seen is kept in ``reported_state`` while ``state`` says ``running`` (not final), so
that the poller keeps following the order instead of failing to parse it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "CLOUD_DESTINATIONS",
    "MAX_ITEMS_PER_ORDER",
    "MAX_ZIP_ITEMS",
    "TOOLS_BY_SOURCE_TYPE",
    "ZIP_LIMITED_ITEM_TYPES",
    "AmazonS3",
    "AzureBlobStorage",
    "BasemapsProduct",
    "ClipParams",
    "Delivery",
    "Destination",
    "FeatureRef",
    "FileFormatParams",
    "Geometry",
    "GoogleCloudStorage",
    "GoogleEarthEngine",
    "HarmonizeParams",
    "Hosting",
    "Manifest",
    "ManifestDigests",
    "ManifestFile",
    "Notifications",
    "OracleCloudStorage",
    "OrderLinks",
    "OrderRequest",
    "OrderState",
    "PlanetOrder",
    "ReprojectParams",
    "ResultLink",
    "S3Compatible",
    "ScenesProduct",
    "SentinelHubHosting",
    "Tool",
    "Webhook",
    "invalid_json_body",
    "planet_error_body",
]

MAX_ITEMS_PER_ORDER = 500
"""Planet's limit on item ids plus quad ids in one order (reference §2.1)."""

MAX_ZIP_ITEMS = 50
ZIP_LIMITED_ITEM_TYPES = ("PelicanScene", "SkySatCollect", "TanagerScene")
"""Planet's overview: with zip delivery an order holds at most 50 items of these item types."""

SourceType = Literal["scenes", "basemaps"]

TOOLS_BY_SOURCE_TYPE: dict[str, tuple[str, ...]] = {
    "scenes": (
        "bandmath",
        "clip",
        "composite",
        "coregister",
        "file_format",
        "harmonize",
        "reproject",
        "tile",
        "toar",
    ),
    "basemaps": ("bandmath", "clip", "merge", "reproject"),
}
_ALL_TOOLS: tuple[str, ...] = tuple(sorted({t for tools in TOOLS_BY_SOURCE_TYPE.values() for t in tools}))

# Keys that tell the two product shapes apart, used to explain a product sent with the wrong source_type.
_SCENES_PRODUCT_KEYS = frozenset({"item_ids", "item_type", "product_bundle"})
_BASEMAPS_PRODUCT_KEYS = frozenset({"mosaic_name", "geometry", "quad_ids"})

# A polygon with thousands of vertices in the wrong axis order would otherwise yield thousands of messages.
_MAX_GEOMETRY_ERRORS = 10

#: The largest order body the gateway takes, from the API or from SQS: the stored order must fit one DynamoDB
#: item (400 KB) and its completion event one SNS message.
MAX_ORDER_BYTES = 192 * 1024


# --- small validated types ---------------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_string", "must not be empty")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_not_blank)]


def _json_number(value: Any) -> int | float:
    # bool is an int subclass in Python but not a number in JSON; NaN/Infinity slip through json.loads.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PydanticCustomError("number_type", "must be a number")
    return value


# Validated as a number but kept as the client wrote it (3 stays 3, not 3.0) so the request round-trips.
JsonNumber = Annotated[int | float, PlainValidator(_json_number)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("http_url", "must be an http:// or https:// URL")
    return value


# Kept as a plain string: pydantic's HttpUrl normalises ("https://h" -> "https://h/"), breaking round-trip.
HttpUrlStr = Annotated[str, AfterValidator(_http_url)]


def _line_error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> InitErrorDetails:
    # Without a context PydanticCustomError leaves the message as is, braces included.
    return {"type": PydanticCustomError(kind, message), "loc": loc, "input": value}


def _raise_if_any(title: str, errors: list[InitErrorDetails]) -> None:
    # A ValidationError raised inside a validator is merged into the outer one, with the validator's field
    # path prefixed to each loc; that is how these errors end up keyed "products.3" or "tools.1".
    if errors:
        raise ValidationError.from_exception_data(title, errors)


class _Wire(BaseModel):
    """A request object: strict types, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid")


class _OpenWire(BaseModel):
    """A request object whose known keys we validate and whose other keys we pass through."""

    model_config = ConfigDict(strict=True, extra="allow")


# --- GeoJSON -----------------------------------------------------------------------------------------------


def _position_errors(position: Any, loc: tuple[str | int, ...]) -> list[InitErrorDetails]:
    # Structure only, never ranges: Planet's own tools-page clip example has a longitude of 181.76, and the
    # SDK's GeoJSON check (the geojson package) does not bound coordinates either. RFC 7946 allows elements
    # after the altitude, so a position is two or more numbers.
    if (
        not isinstance(position, list)
        or len(position) < 2
        or any(isinstance(n, bool) or not isinstance(n, int | float) for n in position)
        or not all(math.isfinite(n) for n in position)
    ):
        message = "a position must be [longitude, latitude] or [longitude, latitude, altitude] numbers"
        return [_line_error(loc, "geojson_position", message, position)]
    return []


def _ring_errors(ring: Any, loc: tuple[str | int, ...]) -> list[InitErrorDetails]:
    if not isinstance(ring, list) or len(ring) < 4:
        got = f"{len(ring)} positions" if isinstance(ring, list) else "not a list"
        message = f"a linear ring must be a list of at least 4 positions; got {got}"
        return [_line_error(loc, "geojson_ring", message, ring)]
    errors = [e for i, pos in enumerate(ring) for e in _position_errors(pos, (*loc, i))]
    if not errors and ring[0] != ring[-1]:
        message = f"linear ring is not closed: the last position must repeat the first, {ring[0]}"
        errors.append(_line_error(loc, "geojson_ring_not_closed", message, ring))
    return errors


def _polygon_errors(rings: Any, loc: tuple[str | int, ...]) -> list[InitErrorDetails]:
    if not isinstance(rings, list) or not rings:
        message = "a Polygon's coordinates must be a non-empty list of linear rings"
        return [_line_error(loc, "geojson_polygon", message, rings)]
    return [e for i, ring in enumerate(rings) for e in _ring_errors(ring, (*loc, i))]


class Geometry(_OpenWire):
    """A GeoJSON Polygon or MultiPolygon in WGS84; foreign members (``bbox``…) pass through."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @field_validator("coordinates")
    @classmethod
    def _check_coordinates(cls, coordinates: list[Any], info: ValidationInfo) -> list[Any]:
        kind = info.data.get("type")
        if kind == "Polygon":
            errors = _polygon_errors(coordinates, ())
        elif kind == "MultiPolygon":
            if not coordinates:
                message = "a MultiPolygon's coordinates must be a non-empty list of polygons"
                errors = [_line_error((), "geojson_multipolygon", message, coordinates)]
            else:
                errors = [e for i, poly in enumerate(coordinates) for e in _polygon_errors(poly, (i,))]
        else:  # the type itself is wrong and already reported; coordinates cannot be judged
            errors = []
        _raise_if_any(cls.__name__, errors[:_MAX_GEOMETRY_ERRORS])
        return coordinates


# --- products ----------------------------------------------------------------------------------------------


class ScenesProduct(_Wire):
    """Items of one item type, in one product bundle (a comma list of bundles means fallbacks)."""

    item_ids: Annotated[list[NonEmptyStr], Field(min_length=1)]
    item_type: NonEmptyStr
    product_bundle: NonEmptyStr

    @property
    def item_count(self) -> int:
        return len(self.item_ids)


class BasemapsProduct(_Wire):
    """A basemap mosaic, cut either by a geometry or by a list of quad ids."""

    mosaic_name: NonEmptyStr
    geometry: Geometry | None = None
    quad_ids: Annotated[list[NonEmptyStr], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BasemapsProduct:
        if (self.geometry is None) == (self.quad_ids is None):
            raise PydanticCustomError(
                "basemaps_product_target", "a basemaps product needs exactly one of geometry or quad_ids"
            )
        return self

    @property
    def item_count(self) -> int:
        return len(self.quad_ids or ())


# --- delivery ----------------------------------------------------------------------------------------------
# Credentials are Field(repr=False): these models end up in log lines and tracebacks.


class AmazonS3(_Wire):
    aws_access_key_id: NonEmptyStr = Field(repr=False)
    aws_secret_access_key: NonEmptyStr = Field(repr=False)
    bucket: NonEmptyStr
    aws_region: NonEmptyStr
    path_prefix: str | None = None


class AzureBlobStorage(_Wire):
    account: NonEmptyStr
    container: NonEmptyStr
    sas_token: NonEmptyStr = Field(repr=False)
    storage_endpoint_suffix: str | None = None
    path_prefix: str | None = None


class GoogleCloudStorage(_Wire):
    bucket: NonEmptyStr
    credentials: NonEmptyStr = Field(repr=False)  # base64 of a service-account JSON
    path_prefix: str | None = None


class GoogleEarthEngine(_Wire):
    project: NonEmptyStr
    collection: NonEmptyStr


class OracleCloudStorage(_Wire):
    customer_access_key_id: NonEmptyStr = Field(repr=False)
    customer_secret_key: NonEmptyStr = Field(repr=False)
    bucket: NonEmptyStr
    region: NonEmptyStr
    namespace: NonEmptyStr
    path_prefix: str | None = None


class S3Compatible(_Wire):
    endpoint: NonEmptyStr
    bucket: NonEmptyStr
    region: NonEmptyStr
    access_key_id: NonEmptyStr = Field(repr=False)
    secret_access_key: NonEmptyStr = Field(repr=False)
    # Optional: the SDK always sends it, but Planet's need for it is unknown (planet-fidelity.md), and
    # requiring it would be stricter than Planet may be.
    use_path_style: bool | None = None
    path_prefix: str | None = None


class Destination(_Wire):
    """A destination registered with Planet's Destinations API (``pl:destinations/…``)."""

    ref: NonEmptyStr
    path_prefix: str | None = None


CLOUD_DESTINATIONS = (
    "amazon_s3",
    "azure_blob_storage",
    "google_cloud_storage",
    "google_earth_engine",
    "oracle_cloud_storage",
    "s3_compatible",
    "destination",
)
"""Keys of ``delivery`` that make Planet deliver the order itself; archive and layout options do not."""


class Delivery(_Wire):
    """Archive options plus at most one cloud destination; without one, Planet serves download links."""

    archive_type: Literal["zip"] | None = None
    single_archive: bool | None = None
    archive_filename: NonEmptyStr | None = None
    layout: dict[str, Any] | None = None
    amazon_s3: AmazonS3 | None = None
    azure_blob_storage: AzureBlobStorage | None = None
    google_cloud_storage: GoogleCloudStorage | None = None
    google_earth_engine: GoogleEarthEngine | None = None
    oracle_cloud_storage: OracleCloudStorage | None = None
    s3_compatible: S3Compatible | None = None
    destination: Destination | None = None

    @model_validator(mode="after")
    def _at_most_one_destination(self) -> Delivery:
        chosen = [name for name in CLOUD_DESTINATIONS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise PydanticCustomError(
                "delivery_destinations",
                "at most one cloud destination is allowed; got {chosen}",
                {"chosen": ", ".join(chosen)},
            )
        return self

    @model_validator(mode="after")
    def _archive_options_need_archive_type(self) -> Delivery:
        # Planet refuses single_archive or archive_filename without archive_type (the SDK never sends them
        # alone); queued, the order would fail minutes later.
        given = [name for name in ("single_archive", "archive_filename") if getattr(self, name) is not None]
        if given and self.archive_type is None:
            message = f'is required ("zip") when {" and ".join(given)} is given'
            _raise_if_any(
                type(self).__name__, [_line_error(("archive_type",), "archive_type", message, None)]
            )
        return self

    @property
    def destination_name(self) -> str | None:
        """The cloud destination's key (``"amazon_s3"``…), or None for direct download."""
        return next((name for name in CLOUD_DESTINATIONS if getattr(self, name) is not None), None)


# --- notifications, hosting -------------------------------------------------------------------------------


class Webhook(_Wire):
    url: HttpUrlStr
    per_order: bool | None = None


class Notifications(_Wire):
    email: bool | None = None
    webhook: Webhook | None = None


class SentinelHubHosting(_Wire):
    collection_id: NonEmptyStr | None = None
    create_configuration: bool | None = None


class Hosting(_Wire):
    sentinel_hub: SentinelHubHosting


# --- tools -------------------------------------------------------------------------------------------------


class FeatureRef(_OpenWire):
    """A reference to a saved Feature (Features API), as the SDK's ``clip_tool`` sends one."""

    type: Literal["ref"]
    content: NonEmptyStr  # "pl:features/my/<collection>/<feature>"; its existence is Planet's to judge


class ClipParams(_OpenWire):
    """``aoi`` is required for scenes orders; a basemaps clip without one clips to the product geometry.

    The AOI is a Polygon or MultiPolygon, or a Feature reference ``{"type": "ref", "content": "pl:..."}``.
    """

    aoi: Geometry | FeatureRef | None = None

    @field_validator("aoi", mode="before")
    @classmethod
    def _geometry_or_ref(cls, value: Any) -> Any:
        # Chosen by "type" rather than left to the union, whose errors would list both shapes' complaints.
        if isinstance(value, Mapping):
            model: type[BaseModel] = FeatureRef if value.get("type") == "ref" else Geometry
            return model.model_validate(value)
        return value


class FileFormatParams(_OpenWire):
    format: Literal["COG", "PL_NITF"]


class ReprojectParams(_OpenWire):
    projection: NonEmptyStr
    resolution: JsonNumber | None = None
    # The SDK documents near, bilinear, cubic, cubicspline, lanczos, average and mode, but does not check it,
    # and Planet's resampler (GDAL) knows more (min, max, med, q1, q3): a name is Planet's to judge.
    kernel: NonEmptyStr | None = None


class HarmonizeParams(_OpenWire):
    target_sensor: NonEmptyStr


class Tool(_Wire):
    """One step of the toolchain: an object with exactly one key, the tool name, mapping to its params."""

    bandmath: dict[str, Any] | None = None
    clip: ClipParams | None = None
    composite: dict[str, Any] | None = None
    coregister: dict[str, Any] | None = None
    file_format: FileFormatParams | None = None
    harmonize: HarmonizeParams | None = None
    merge: dict[str, Any] | None = None
    reproject: ReprojectParams | None = None
    tile: dict[str, Any] | None = None
    toar: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_known_key(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # the model's own "must be an object" error follows
        if len(data) != 1:
            message = (
                'a tool must be an object with exactly one key, the tool name, e.g. {"clip": {...}}; '
                f"got {len(data)} keys"
            )
            raise PydanticCustomError("tool_shape", message)
        ((name, params),) = data.items()
        if name not in _ALL_TOOLS:
            known = ", ".join(_ALL_TOOLS)
            raise PydanticCustomError("unknown_tool", f"unknown tool {name!r}; known tools: {known}")
        if params is None:
            raise PydanticCustomError("tool_params", "tool parameters must be an object; use {} for none")
        return data

    @model_validator(mode="after")
    def _required_parameters(self) -> Tool:
        # Only what Planet's tools docs state and Planet refuses at create (the fake mirrors it): a refusal
        # the gateway misses is a 202 that fails minutes later. Other parameters stay Planet's to judge.
        name, params = self.name, self.params
        if not isinstance(params, dict):
            return self
        errors = []
        if name == "tile" and not _positive_int(params.get("tile_size")):
            errors.append(_line_error((name, "tile_size"), "tile_size", "must be a positive integer", params))
        elif name == "toar" and "scale_factor" in params and not _positive_int(params["scale_factor"]):
            message = "must be a positive integer (Planet's default is 10000)"
            errors.append(
                _line_error((name, "scale_factor"), "scale_factor", message, params["scale_factor"])
            )
        elif name == "composite" and params.get("group_by", "order") not in _COMPOSITE_GROUP_BY:
            accepted = ", ".join(map(repr, _COMPOSITE_GROUP_BY))
            message = f"must be one of {accepted}; got {_short(params['group_by'])}"
            errors.append(_line_error((name, "group_by"), "group_by", message, params["group_by"]))
        elif name == "bandmath" and not (isinstance(params.get("b1"), str) and params["b1"].strip()):
            message = 'is required: an expression for the first output band, e.g. "b1" or "(b4-b3)/(b4+b3)"'
            errors.append(_line_error((name, "b1"), "bandmath_b1", message, params.get("b1")))
        elif name == "coregister" and not (
            isinstance(params.get("anchor_item"), str) and params["anchor_item"].strip()
        ):
            message = "is required: the id of one of the order's items"
            errors.append(
                _line_error((name, "anchor_item"), "anchor_item", message, params.get("anchor_item"))
            )
        _raise_if_any(type(self).__name__, errors)
        return self

    @property
    def name(self) -> str:
        """The tool's name, e.g. ``"clip"``."""
        return next(name for name in _ALL_TOOLS if getattr(self, name) is not None)

    @property
    def params(self) -> BaseModel | dict[str, Any]:
        """The tool's parameters (a model for validated tools, a dict for the others)."""
        value: BaseModel | dict[str, Any] = getattr(self, self.name)
        return value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_COMPOSITE_GROUP_BY = ("order", "strip_id")
"""The composite tool's ``group_by`` values Planet's tools docs list (``order`` is the default)."""


def _toolchain_errors(tools: list[Tool], item_ids: set[str] | None) -> list[InitErrorDetails]:
    """A tool listed twice, and a coregister anchor that is not an item of the order (``item_ids``)."""
    errors = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if tool.name in seen:
            message = f"tool {tool.name!r} appears more than once; a tool may appear only once in a toolchain"
            errors.append(_line_error((i,), "duplicate_tool", message, tool.name))
        seen.add(tool.name)
        anchor = tool.coregister.get("anchor_item") if tool.coregister is not None else None
        if item_ids is not None and anchor is not None and anchor not in item_ids:
            message = f"must be one of the order's item ids; {_short(anchor)} is not among them"
            errors.append(_line_error((i, "coregister", "anchor_item"), "anchor_item", message, anchor))
    return errors


def _unknown_tool_message(name: str, source_type: str) -> str:
    accepted = ", ".join(TOOLS_BY_SOURCE_TYPE[source_type])
    if name in _ALL_TOOLS:
        other = next(s for s in TOOLS_BY_SOURCE_TYPE if s != source_type)
        return f"tool {name!r} is only available for {other} orders; {source_type} orders accept: {accepted}"
    return f"unknown tool {name!r}; {source_type} orders accept: {accepted}"


# --- the create request ------------------------------------------------------------------------------------


class OrderRequest(_Wire):
    """The body of ``POST /orders/v2`` (reference §3)."""

    name: NonEmptyStr
    source_type: SourceType = "scenes"
    # Validated against source_type by _products_for_source; the union is only the stored/serialised type.
    products: list[ScenesProduct | BasemapsProduct]
    order_type: Literal["full", "partial"] = "full"
    subscription_id: int | None = None
    delivery: Delivery | None = None
    notifications: Notifications | None = None
    tools: list[Tool] | None = None
    hosting: Hosting | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("products", mode="wrap")
    @classmethod
    def _products_for_source(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[ScenesProduct | BasemapsProduct]:
        source_type = info.data.get("source_type")
        if source_type is None:
            # source_type is invalid and already reported; without it a product cannot be judged.
            return value
        if isinstance(value, list):
            _raise_if_any(cls.__name__, _product_kind_errors(value, source_type))
        products: list[ScenesProduct | BasemapsProduct] = _product_list_adapter(source_type).validate_python(
            value
        )
        total = sum(p.item_count for p in products)
        if total > MAX_ITEMS_PER_ORDER:
            message = (
                f"an order may contain at most {MAX_ITEMS_PER_ORDER} items (item ids plus quad ids); "
                f"this one has {total}"
            )
            _raise_if_any(cls.__name__, [_line_error((), "too_many_items", message, total)])
        return products

    @field_validator("tools", mode="wrap")
    @classmethod
    def _tools_for_source(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> list[Tool] | None:
        source_type = info.data.get("source_type")
        if source_type is not None and isinstance(value, list):
            errors = [
                _line_error((i,), "unknown_tool", _unknown_tool_message(name, source_type), raw)
                for i, raw in enumerate(value)
                if isinstance(raw, Mapping) and len(raw) == 1
                for name in raw
                if name not in TOOLS_BY_SOURCE_TYPE[source_type]
            ]
            _raise_if_any(cls.__name__, errors)
        tools: list[Tool] | None = handler(value)
        if tools:
            products = info.data.get("products")  # absent when the products were invalid
            item_ids = (
                {i for p in products if isinstance(p, ScenesProduct) for i in p.item_ids}
                if source_type == "scenes" and isinstance(products, list)
                else None
            )
            _raise_if_any(cls.__name__, _toolchain_errors(tools, item_ids))
        if source_type == "scenes" and tools:
            message = "is required for scenes orders (only basemaps orders may clip to the product geometry)"
            _raise_if_any(
                cls.__name__,
                [
                    _line_error((i, "clip", "aoi"), "clip_aoi_required", message, None)
                    for i, tool in enumerate(tools)
                    if tool.clip is not None and tool.clip.aoi is None
                ],
            )
        return tools

    @model_validator(mode="after")
    def _zip_item_limit(self) -> OrderRequest:
        if self.delivery is None or self.delivery.archive_type != "zip":
            return self
        limited = {
            (p.item_type, i)
            for p in self.products
            if isinstance(p, ScenesProduct) and p.item_type in ZIP_LIMITED_ITEM_TYPES
            for i in p.item_ids
        }
        if len(limited) > MAX_ZIP_ITEMS:
            message = (
                f"with zip delivery an order may contain at most {MAX_ZIP_ITEMS} items of item types "
                f"{', '.join(ZIP_LIMITED_ITEM_TYPES)}; this one has {len(limited)}"
            )
            _raise_if_any(
                type(self).__name__, [_line_error(("products",), "too_many_zip_items", message, None)]
            )
        return self

    @property
    def item_count(self) -> int:
        """Item ids plus quad ids across all products (geometry-cut basemaps count as zero)."""
        return sum(p.item_count for p in self.products)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body to send to Planet: what the client sent, without nulls."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def stored_size(self) -> int:
        """Bytes of the order as the repository stores it (compact JSON, non-ASCII escaped, plus its name).

        Can be longer than the body as sent; must stay within ``MAX_ORDER_BYTES``.
        """
        return len(json.dumps(self.to_wire(), separators=(",", ":")).encode()) + len(self.name.encode())


@functools.cache
def _product_list_adapter(source_type: str) -> TypeAdapter[Any]:
    # Built on first use, not at import: this module is on the API Lambda's cold-start path.
    if source_type == "scenes":
        return TypeAdapter(Annotated[list[ScenesProduct], Field(min_length=1)])
    return TypeAdapter(Annotated[list[BasemapsProduct], Field(min_length=1)])


def _product_kind_errors(products: list[Any], source_type: str) -> list[InitErrorDetails]:
    """A product shaped for the other source type, explained instead of as a pile of missing fields."""
    errors = []
    for i, raw in enumerate(products):
        if not isinstance(raw, Mapping):
            continue
        keys = set(raw)
        if source_type == "basemaps" and keys & _SCENES_PRODUCT_KEYS and not keys & _BASEMAPS_PRODUCT_KEYS:
            message = (
                "a scenes product (item_ids, item_type, product_bundle) cannot be ordered with "
                "source_type 'basemaps'; basemaps products take mosaic_name plus geometry or quad_ids"
            )
            errors.append(_line_error((i,), "product_source_type", message, raw))
        elif source_type == "scenes" and keys & _BASEMAPS_PRODUCT_KEYS and not keys & _SCENES_PRODUCT_KEYS:
            message = (
                "a basemaps product (mosaic_name, geometry or quad_ids) cannot be ordered with source_type "
                "'scenes' (the default when source_type is omitted); set source_type to 'basemaps'"
            )
            errors.append(_line_error((i,), "product_source_type", message, raw))
    return errors


# --- what Planet returns -----------------------------------------------------------------------------------


class OrderState(StrEnum):
    """An order's state, in the SDK's sequence: queued < running < failed < success < partial < cancelled."""

    queued = "queued"
    running = "running"
    failed = "failed"
    success = "success"
    partial = "partial"
    cancelled = "cancelled"

    @property
    def position(self) -> int:
        """Index in the SDK's ``ORDER_STATE_SEQUENCE``."""
        return list(OrderState).index(self)

    @property
    def is_final(self) -> bool:
        """True once past ``running`` (failed, success, partial, cancelled): the state will not change."""
        return self.position > OrderState.running.position

    @property
    def is_cancellable(self) -> bool:
        """Planet cancels only queued orders (reference §2.4)."""
        return self is OrderState.queued

    def has_reached(self, target: OrderState | str) -> bool:
        """True when this state is ``target`` or after it in the sequence (the SDK's ``wait(state=…)``)."""
        return self.position >= OrderState(target).position


_STATE_VALUES = frozenset(state.value for state in OrderState)


class _Upstream(BaseModel):
    """Planet's responses: unknown fields ignored, since Planet adds fields without notice; nulls absent."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        # "error_hints": null or "_links": null then gets the field's default instead of failing the parse.
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


def _lenient_time(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
    """A timestamp we cannot read is dropped: no consumer may stall on Planet's clock format."""
    try:
        result: datetime | None = handler(value)
    except ValidationError:
        return None
    return result


LenientTime = Annotated[datetime | None, WrapValidator(_lenient_time)]


def _hint_texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        value = [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in value if item is not None]


def _known_state(value: Any) -> Any:
    # An unknown string becomes running (not final); PlanetOrder.reported_state keeps Planet's own word.
    if isinstance(value, str) and value not in _STATE_VALUES:
        return OrderState.running
    return value


class ResultLink(_Upstream):
    """One entry of ``_links.results``: a delivered file (``name`` is ``<order_id>/<ItemType>/<file>``)."""

    name: str
    location: str | None = None
    # left_to_right: try datetime first; a smart union would keep any string as a string.
    expires_at: datetime | str | None = Field(default=None, union_mode="left_to_right")
    delivery: str | None = None


class OrderLinks(_Upstream):
    self_url: str | None = Field(default=None, alias="_self")
    results: list[ResultLink] | None = None

    @field_validator("results", mode="wrap")
    @classmethod
    def _readable_results(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list[ResultLink] | None:
        # An entry we cannot read (no name) is left out rather than making the whole order unreadable: the
        # poller needs only the state, and landing checks every file against manifest.json, so a file whose
        # link was left out fails the landing loudly instead of going missing.
        if not isinstance(value, list):
            result: list[ResultLink] | None = handler(value)
            return result
        kept = []
        for entry in value:
            try:
                kept.append(ResultLink.model_validate(entry))
            except ValidationError:
                continue
        return kept


class PlanetOrder(_Upstream):
    """An order as ``GET /orders/v2/{id}`` (or create, cancel, list) returns it."""

    id: NonEmptyStr
    name: str = ""  # always sent by Planet; a default keeps consumers free of None checks
    state: Annotated[OrderState, BeforeValidator(_known_state)]
    #: The state exactly as Planet sent it; differs from ``state`` only for a state we do not know.
    reported_state: str = ""
    last_message: str | None = None
    error_hints: Annotated[list[str], BeforeValidator(_hint_texts)] = Field(default_factory=list)
    created_on: LenientTime = None
    last_modified: LenientTime = None
    products: list[Any] = Field(default_factory=list)
    tools: list[Any] | None = None
    delivery: dict[str, Any] | None = None
    notifications: dict[str, Any] | None = None
    hosting: dict[str, Any] | None = None
    order_type: str | None = None
    source_type: str | None = None
    subscription_id: int | str | None = None
    metadata: dict[str, Any] | None = None
    links: OrderLinks = Field(default_factory=OrderLinks, alias="_links")

    @model_validator(mode="before")
    @classmethod
    def _keep_reported_state(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("state"), str):
            return {**data, "reported_state": data["state"]}
        return data

    @property
    def state_is_known(self) -> bool:
        """False when Planet sent a state this gateway has never seen (then ``state`` is ``running``)."""
        return self.reported_state in ("", self.state.value)

    @property
    def results(self) -> list[ResultLink]:
        """Delivered files; empty until Planet has produced some (list responses never carry them)."""
        return self.links.results or []

    @property
    def is_final(self) -> bool:
        return self.state.is_final


class ManifestDigests(_Upstream):
    md5: str | None = None
    sha256: str | None = None

    @field_validator("md5", "sha256")
    @classmethod
    def _lowercase(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class ManifestFile(_Upstream):
    """One file in ``manifest.json``; ``path`` is relative to the ``<order_id>/`` directory."""

    path: str
    media_type: str | None = None
    size: int | None = Field(default=None, ge=0)
    digests: ManifestDigests = Field(default_factory=ManifestDigests)
    annotations: dict[str, Any] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        # The path becomes part of an S3 key and a local path; refuse anything that could escape the order.
        pure = PurePosixPath(value)
        if not value or "\\" in value or pure.is_absolute() or ".." in pure.parts:
            raise ValueError("must be a relative path inside the order directory")
        return value

    @property
    def item_id(self) -> str | None:
        return self.annotations.get("planet/item_id")

    @property
    def item_type(self) -> str | None:
        return self.annotations.get("planet/item_type")

    @property
    def asset_type(self) -> str | None:
        """Absent for composite outputs."""
        return self.annotations.get("planet/asset_type")


class Manifest(_Upstream):
    """``<order_id>/manifest.json`` (reference §5); it does not list itself."""

    name: str | None = None
    files: list[ManifestFile] = Field(default_factory=list)


# --- Planet's 400 shape ------------------------------------------------------------------------------------

_GENERAL_REJECTION = "Unable to accept order"

_NOUNS = {"products": "product", "item_ids": "item id", "quad_ids": "quad id", "order_ids": "order id"}
_LEGACY_FIELDS = {
    "webhook_url": "use notifications.webhook.url",
    "webhook_per_order": "use notifications.webhook.per_order",
}
_SIMPLE_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def planet_error_body(error: ValidationError) -> dict[str, Any]:
    """Planet's 400 body for a failed validation: each field's path mapped to plain-words messages."""
    fields: dict[str, list[dict[str, str]]] = {}
    general = [{"message": _GENERAL_REJECTION}]
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        message = _describe(err, loc, error.title)
        if not loc:
            general.append({"message": message})
            continue
        fields.setdefault(".".join(str(part) for part in loc), []).append({"message": message})
    return {"field": fields, "general": general}


def invalid_json_body(exc: json.JSONDecodeError) -> dict[str, Any]:
    """Planet's 400 shape for a body that is not JSON at all."""
    message = f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return {"field": {}, "general": [{"message": message}]}


def _describe(err: Any, loc: tuple[Any, ...], title: str) -> str:
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if not loc and kind in ("model_type", "dict_type", "model_attributes_type"):
        return "Request body must be a JSON object"
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind]
    if kind == "too_short":
        noun = _NOUNS.get(_last_name(loc), "item")
        count = ctx.get("min_length", 1)
        return f"must contain at least one {noun}" if count == 1 else f"must contain at least {count} {noun}s"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', 'one of the allowed values')}; got {_short(err['input'])}"
    if kind == "extra_forbidden":
        return _unknown_field_message(loc, title)
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def _unknown_field_message(loc: tuple[Any, ...], title: str) -> str:
    name = str(loc[-1])
    if name in _LEGACY_FIELDS:
        return f"unknown field; {_LEGACY_FIELDS[name]}"
    accepted = _accepted_fields(loc[:-1]) if title == OrderRequest.__name__ else None
    if not accepted:
        return "unknown field"
    import difflib  # only on the error path

    where = "an order request" if len(loc) == 1 else _last_name(loc[:-1]) or "this object"
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}{where} accepts: {', '.join(accepted)}"


def _accepted_fields(parent_loc: Sequence[Any]) -> list[str] | None:
    """Field names of the OrderRequest sub-model at ``parent_loc``; None where that is ambiguous (unions)."""
    model: type[BaseModel] = OrderRequest
    for part in parent_loc:
        if isinstance(part, int):
            continue  # list index: same model
        field = model.model_fields.get(part)
        if field is None:
            return None
        found = _models_in(field.annotation)
        if len(found) != 1:
            return None
        model = found[0]
    return list(model.model_fields)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _last_name(loc: Iterable[Any]) -> str:
    return next((str(part) for part in reversed(tuple(loc)) if isinstance(part, str)), "")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
