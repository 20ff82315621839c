"""Orders: request validation, the scripted state timeline, and the JSON documents the API returns."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import catalog
from .config import FakePlanetConfig, Outcome
from .outputs import MANIFEST_PATH, Item, OutputFile, plan_items
from .shaping import add_stac, apply_tools, zip_items
from .timefmt import NO_EXPIRY, format_time
from .tools_spec import ToolError, check_tools

STATES = ("queued", "running", "failed", "success", "partial", "cancelled")
ACTIVE_STATES = ("queued", "running")
MAX_ITEMS_PER_ORDER = catalog.MAX_ITEMS_PER_ORDER
# Delivery keys that send results to a bucket instead of download links (reference section 3).
CLOUD_DELIVERY_KEYS = frozenset(
    {
        "amazon_s3",
        "azure_blob_storage",
        "google_cloud_storage",
        "google_earth_engine",
        "oracle_cloud_storage",
        "s3_compatible",
        "destination",
    }
)
# Request fields echoed back in the order document; anything else in a create body is dropped.
_ECHOED_FIELDS = (
    "name",
    "source_type",
    "order_type",
    "products",
    "subscription_id",
    "delivery",
    "notifications",
    "tools",
    "hosting",
    "metadata",
)
_OBJECT_FIELDS = {
    "delivery": "Delivery",
    "notifications": "Notifications",
    "hosting": "Hosting",
    "metadata": "Metadata",
}
_TERMINAL_MESSAGES = {
    "success": "Manifest delivery completed",
    "partial": "Manifest delivery completed",
    "failed": "Order failed: see error_hints",
}

# Signs a download link for a path relative to the order directory: returns (location, expires_at).
LinkSigner = Callable[[str], tuple[str, str]]


class OrderRequestError(Exception):
    """A create request the API refuses with 400."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "field": {self.field_name: [{"message": self.message}]},
            "general": [{"message": "Unable to accept order"}],
        }


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _check_product(source_type: str, product: Any) -> None:
    if not isinstance(product, dict):
        raise OrderRequestError("Products", "Each product must be an object")
    if source_type == "basemaps":
        if not isinstance(product.get("mosaic_name"), str) or not product["mosaic_name"]:
            raise OrderRequestError("Products", "A basemaps product needs a mosaic_name")
        if "quad_ids" in product:
            if not _is_string_list(product["quad_ids"]):
                raise OrderRequestError("Products", "quad_ids must be a non-empty list of quad ids")
        elif not isinstance(product.get("geometry"), dict):
            raise OrderRequestError("Products", "A basemaps product needs quad_ids or a geometry")
        return
    if not _is_string_list(product.get("item_ids")):
        raise OrderRequestError("Products", "item_ids must be a non-empty list of item ids")
    for key in ("item_type", "product_bundle"):
        if not isinstance(product.get(key), str) or not product[key]:
            raise OrderRequestError("Products", f"A scenes product needs {key}")
    _check_bundles(product["item_type"], product["product_bundle"])
    for item_id in product["item_ids"]:
        if MISSING_ITEM_MARKER in item_id:
            raise OrderRequestError(
                "Details", f"Item ID {item_id} / Item Type {product['item_type']} doesn't exist"
            )


# An item id containing this is unknown to the catalog: create refuses it (SDK mock's message).
MISSING_ITEM_MARKER = "nonexistent"


def _check_bundles(item_type: str, product_bundle: str) -> None:
    """Every bundle of the (comma-separated fallback) list must exist and be offered for the item type."""
    bundles = [b.strip() for b in product_bundle.split(",")]
    if item_type not in catalog.item_types():
        raise OrderRequestError("Products", f"Bad item type '{item_type}' for bundle type '{bundles[0]}'")
    for bundle in bundles:
        if bundle not in catalog.bundles():
            raise OrderRequestError("Products", f"Unknown product bundle '{bundle}'")
        if catalog.bundle_assets(bundle, item_type) is None:
            raise OrderRequestError("Products", f"Bad item type '{item_type}' for bundle type '{bundle}'")


def normalize_request(body: Any) -> dict[str, Any]:
    """Validate a create body and return the fields the order echoes, with upstream's defaults filled in.

    Raises OrderRequestError.
    """
    if not isinstance(body, dict):
        raise OrderRequestError("Body", "The request body must be a JSON object")
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise OrderRequestError("Name", "name is required")
    # The SDK's build_request never sets source_type, so upstream must default it (reference 2.1).
    source_type = body.get("source_type", "scenes")
    if source_type not in ("scenes", "basemaps"):
        raise OrderRequestError("SourceType", f"Unsupported source_type '{source_type}'")
    order_type = body.get("order_type", "full")
    if order_type not in ("full", "partial"):
        raise OrderRequestError("OrderType", f"Unsupported order_type '{order_type}'")
    products = body.get("products")
    if not isinstance(products, list) or not products:
        raise OrderRequestError("Products", "products must be a non-empty list")
    for product in products:
        _check_product(source_type, product)
    for key, field_name in _OBJECT_FIELDS.items():
        if key in body and not isinstance(body[key], dict):
            raise OrderRequestError(field_name, f"{key} must be an object")
    if "subscription_id" in body and (
        not isinstance(body["subscription_id"], int) or isinstance(body["subscription_id"], bool)
    ):
        raise OrderRequestError("SubscriptionId", "subscription_id must be an integer")
    _check_delivery(body.get("delivery", {}), source_type, products)
    item_ids = {i for p in products for i in p.get("item_ids", [])}
    try:
        check_tools(body.get("tools", []), source_type, item_ids)
    except ToolError as exc:
        raise OrderRequestError("Tools", str(exc)) from exc

    # Only what was sent is echoed: a real create answer has no source_type or order_type when the request
    # had none (planetlabs/notebooks planet_sdk_orders_demo.ipynb, 2025); the defaults apply regardless.
    request = {key: body[key] for key in _ECHOED_FIELDS if key in body}
    tools = request.get("tools", [])
    if "hosting" in request and not any("file_format" in tool for tool in tools):
        # Hosted orders come back with Planet's own COG conversion appended to the toolchain.
        request["tools"] = [*tools, {"file_format": {"format": "COG"}}]
    sentinel_hub = request.get("hosting", {}).get("sentinel_hub")
    if isinstance(sentinel_hub, dict) and not sentinel_hub.get("collection_id"):
        # Upstream creates a collection when none is named and returns its id (mechanics doc).
        request["hosting"] = {
            **request["hosting"],
            "sentinel_hub": {**sentinel_hub, "collection_id": str(uuid.uuid4())},
        }
    return request


def _check_delivery(delivery: dict[str, Any], source_type: str, products: list[Any]) -> None:
    archive_type = delivery.get("archive_type")
    if archive_type is None:
        for key in ("single_archive", "archive_filename"):
            if key in delivery:
                raise OrderRequestError("Delivery", f"{key} needs archive_type 'zip'")
        return
    if archive_type != "zip":
        raise OrderRequestError("Delivery", f"Unsupported archive_type '{archive_type}': only 'zip'")
    if "single_archive" in delivery and not isinstance(delivery["single_archive"], bool):
        raise OrderRequestError("Delivery", "single_archive must be a boolean")
    filename = delivery.get("archive_filename")
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise OrderRequestError("Delivery", "archive_filename must be a non-empty string")
    if source_type == "scenes":
        limited = sum(
            len(set(p["item_ids"])) for p in products if p.get("item_type") in catalog.ZIP_LIMITED_ITEM_TYPES
        )
        if limited > catalog.MAX_ZIP_ITEMS:
            raise OrderRequestError(
                "Products",
                f"Orders with zip delivery may hold at most {catalog.MAX_ZIP_ITEMS} items of item types "
                + ", ".join(sorted(catalog.ZIP_LIMITED_ITEM_TYPES)),
            )


def _decide_failures(
    items: list[Item], order_type: str, forced: Outcome | None
) -> tuple[frozenset[str], str]:
    """Which items fail, and the terminal state. See README "Outcomes"."""
    ids = [item.item_id for item in items if not item.order_level]
    if forced == "success":
        return frozenset(), "success"
    if forced == "failed":
        return frozenset(ids), "failed"
    if forced == "partial":
        return frozenset(ids[1:]), "partial"
    failing = frozenset(item.item_id for item in items if item.fails_naturally and not item.order_level)
    if not failing:
        return failing, "success"
    if order_type == "partial" and len(failing) < len(ids):
        return failing, "partial"
    return failing, "failed"


@dataclass(frozen=True)
class Snapshot:
    """An order as seen at one moment. `item_states` is None while no result exists (queued, cancelled)."""

    state: str
    last_modified: datetime
    last_message: str
    error_hints: tuple[str, ...] = ()
    item_states: tuple[str, ...] | None = None
    manifest_ready: bool = False


def _truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class Order:
    id: str
    api_key: str
    request: dict[str, Any]
    created: datetime
    queued_seconds: float
    running_seconds: float
    items: tuple[Item, ...]
    failing: frozenset[str]
    final_state: str
    cancelled: datetime | None = None
    _files: dict[str, OutputFile] | None = None

    @classmethod
    def create(cls, api_key: str, body: Any, config: FakePlanetConfig, now: datetime) -> Order:
        """Raises OrderRequestError."""
        request = normalize_request(body)
        source_type = request.get("source_type", "scenes")
        try:
            items = plan_items(source_type, request["products"], config.file_size)
        except ValueError as exc:
            raise OrderRequestError("Products", f"Invalid geometry: {exc}") from exc
        if len(items) > MAX_ITEMS_PER_ORDER:
            raise OrderRequestError("Products", f"An order may hold at most {MAX_ITEMS_PER_ORDER} items")
        order_id = str(uuid.uuid4())
        chain = check_tools(request.get("tools", []), source_type, {i.item_id for i in items})
        items = apply_tools(items, chain, config.file_size)
        if source_type == "scenes" and isinstance(request.get("metadata", {}).get("stac"), dict):
            items = add_stac(items, request["name"])
        failing, final_state = _decide_failures(items, request.get("order_type", "full"), config.outcome)
        if final_state == "failed":
            # Order-level outputs (composite, catalog, single archive) exist only if the order delivers.
            failing |= {item.item_id for item in items if item.order_level}
        delivery = request.get("delivery", {})
        if delivery.get("archive_type") == "zip":
            items = zip_items(items, order_id, request["name"], delivery, failing)
            if final_state == "failed":
                failing |= {item.item_id for item in items if item.order_level}
        return cls(
            id=order_id,
            api_key=api_key,
            request=request,
            created=now,
            queued_seconds=config.queued_seconds,
            running_seconds=config.running_seconds,
            items=tuple(items),
            failing=failing,
            final_state=final_state,
        )

    @property
    def name(self) -> str:
        return str(self.request["name"])

    @property
    def source_type(self) -> str:
        return str(self.request.get("source_type", "scenes"))

    @property
    def has_hosting(self) -> bool:
        return "hosting" in self.request

    @property
    def destination_ref(self) -> str | None:
        destination = self.request.get("delivery", {}).get("destination")
        return destination.get("ref") if isinstance(destination, dict) else None

    @property
    def has_download_links(self) -> bool:
        """False when Planet delivers elsewhere: to a cloud bucket or a Sentinel Hub collection."""
        delivery = self.request.get("delivery", {})
        return not self.has_hosting and not CLOUD_DELIVERY_KEYS.intersection(delivery)

    def delivered_files(self) -> list[OutputFile]:
        """Files of the items that succeed: what manifest.json lists once the order is done."""
        return [f for item in self.items if item.item_id not in self.failing for f in item.files]

    def find_file(self, path: str) -> OutputFile | None:
        if self._files is None:
            self._files = {f.path: f for item in self.items for f in item.files}
        return self._files.get(path)

    def accepted_snapshot(self) -> Snapshot:
        """The order as create returns it: queued, whatever the timeline says by the time it is rendered."""
        return Snapshot("queued", self.created, "Preparing order")

    def snapshot(self, now: datetime) -> Snapshot:
        """The state on the scripted timeline: queued, then running while items finish one by one at
        even intervals, then the terminal state once running_seconds have passed."""
        if self.cancelled is not None:
            return Snapshot("cancelled", self.cancelled, "Cancel success")
        elapsed = (now - self.created).total_seconds()
        if elapsed < self.queued_seconds:
            return self.accepted_snapshot()
        if elapsed >= self.queued_seconds + self.running_seconds:
            hints = tuple(
                item.failure_hint
                for item in self.items
                if item.item_id in self.failing and not item.order_level
            )
            states = tuple("failed" if i.item_id in self.failing else "success" for i in self.items)
            return Snapshot(
                self.final_state,
                _truncate_ms(self.created + timedelta(seconds=self.queued_seconds + self.running_seconds)),
                _TERMINAL_MESSAGES[self.final_state],
                hints,
                states,
                manifest_ready=self.final_state != "failed",
            )
        # Item k of n finishes at queued + running * (k + 1) / (n + 1); the manifest comes last.
        slots = len(self.items) + 1
        done = min(len(self.items), int((elapsed - self.queued_seconds) * slots / self.running_seconds))
        states = tuple(
            ("failed" if item.item_id in self.failing else "success") if index < done else "pending"
            for index, item in enumerate(self.items)
        )
        progress = self.queued_seconds + self.running_seconds * done / slots
        return Snapshot(
            "running",
            _truncate_ms(self.created + timedelta(seconds=progress)),
            "Processing order",
            tuple(
                item.failure_hint
                for item in self.items[:done]
                if item.item_id in self.failing and not item.order_level
            ),
            states,
        )

    def document(self, snap: Snapshot, self_url: str, sign: LinkSigner | None) -> dict[str, Any]:
        """The order JSON: with `sign`, `_links.results` is included (GET); without, only `_self` (list)."""
        links: dict[str, Any] = {"_self": self_url}
        if sign is not None and snap.item_states is not None:
            links["results"] = self._results(snap.item_states, snap.manifest_ready, sign)
        return {
            **self.request,
            "_links": links,
            "id": self.id,
            "state": snap.state,
            "last_message": snap.last_message,
            "error_hints": list(snap.error_hints),
            "created_on": format_time(self.created),
            "last_modified": format_time(snap.last_modified),
        }

    def _results(
        self, item_states: tuple[str, ...], manifest_ready: bool, sign: LinkSigner
    ) -> list[dict[str, str]]:
        paths = [(MANIFEST_PATH, "success")] if manifest_ready else []
        paths += [
            (f.path, state) for item, state in zip(self.items, item_states, strict=True) for f in item.files
        ]
        results = []
        for path, delivery in paths:
            result = {"name": f"{self.id}/{path}", "delivery": delivery, "expires_at": NO_EXPIRY}
            # Only a delivered file of a direct-download order has a link; Planet leaves the rest without one.
            if delivery == "success" and self.has_download_links:
                result["location"], result["expires_at"] = sign(path)
            results.append(result)
        return results
