"""Item types and product bundles, checked against Planet's bundles spec before an order is queued.

Planet refuses an order with an unknown item type or a bundle that item type does not offer, synchronously,
with a 400. The gateway queues orders and submits them later, so without this check such an order would
get a 202 and only later end ``failed``. The check mirrors the SDK (``planet/specs.py``): names match
whatever their case; the item type must be one the spec lists; each bundle of ``product_bundle`` (a comma
list: the bundle, then its fallbacks, as ``order_request.product(fallback_bundle=...)`` builds it) must be
one that lists the item type among its assets.

Where the spec comes from decides how sure the check may be. Planet's own spec, read from
``GET /bundles/spec`` and cached for ``bundles_spec_ttl_seconds``, is authoritative: what it does not list
is refused. When Planet cannot be reached the check falls back to a table generated from a published spec
(``bundles_fallback.py``), which may be older than Planet's: it refuses only a pair it knows both halves of
and knows not to go together; a name it has never seen is accepted and left to Planet.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from order_core.models.planet import OrderRequest, ScenesProduct
from order_core.observability import logger

__all__ = [
    "BundlesSpec",
    "BundlesSpecSource",
    "FieldError",
    "UnusableSpec",
    "check_request_against_spec",
    "refusal_body",
]

SpecOrigin = Literal["planet", "fallback"]

_REFUSAL = "Unable to accept order"
_LISTED = 12  # names listed in a message at most; the rest are counted


class UnusableSpec(ValueError):
    """Planet answered ``/bundles/spec`` with something that is not a bundles spec."""


@dataclass(frozen=True)
class BundlesSpec:
    """Which item types each product bundle offers, and where that knowledge came from."""

    item_types_by_bundle: Mapping[str, frozenset[str]]
    origin: SpecOrigin
    version: str | None = None
    _bundles: dict[str, str] = field(init=False, repr=False, compare=False)
    _item_types: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Lower-cased name -> name as the spec spells it: the SDK matches names whatever their case.
        object.__setattr__(self, "_bundles", {b.lower(): b for b in self.item_types_by_bundle})
        object.__setattr__(
            self, "_item_types", {t.lower(): t for ts in self.item_types_by_bundle.values() for t in ts}
        )

    @classmethod
    def from_planet(cls, payload: Any, source: SpecOrigin = "planet") -> BundlesSpec:
        """Read ``GET /bundles/spec``'s JSON: ``{"bundles": {name: {"assets": {item_type: [...]}}}}``.

        Only the bundle names and the item types under each ``assets`` are read; every other field is
        ignored. Raises ``UnusableSpec`` when no bundle with assets can be read at all.
        """
        bundles = payload.get("bundles") if isinstance(payload, Mapping) else None
        if not isinstance(bundles, Mapping):
            raise UnusableSpec("the answer has no 'bundles' object")
        table: dict[str, frozenset[str]] = {}
        for name, bundle in bundles.items():
            assets = bundle.get("assets") if isinstance(bundle, Mapping) else None
            if isinstance(name, str) and name and isinstance(assets, Mapping):
                table[name] = frozenset(t for t in assets if isinstance(t, str) and t)
        if not any(table.values()):
            raise UnusableSpec("no bundle in the answer lists the item types it offers")
        version = payload.get("version")
        return cls(table, source, str(version) if version is not None else None)

    @classmethod
    def fallback(cls) -> BundlesSpec:
        """The table generated from a published spec (``bundles_fallback.py``)."""
        from order_core.services import bundles_fallback

        table = {name: frozenset(types) for name, types in bundles_fallback.ITEM_TYPES_BY_BUNDLE.items()}
        return cls(table, "fallback", bundles_fallback.SPEC_VERSION)

    @property
    def authoritative(self) -> bool:
        """True for Planet's own spec: what it does not list, Planet does not accept."""
        return self.origin == "planet"

    @property
    def item_types(self) -> frozenset[str]:
        return frozenset(self._item_types.values())

    def item_type(self, name: str) -> str | None:
        """The item type as the spec spells it, or None if the spec does not list it."""
        return self._item_types.get(name.lower())

    def bundle(self, name: str) -> str | None:
        """The bundle as the spec spells it, or None if the spec does not list it."""
        return self._bundles.get(name.lower())

    def bundles_for(self, item_type: str) -> list[str]:
        """Bundles offering ``item_type`` (as the spec spells it), sorted."""
        return sorted(b for b, types in self.item_types_by_bundle.items() if item_type in types)


@dataclass(frozen=True)
class FieldError:
    """One reason to refuse, under the request field it concerns (``products.0.product_bundle``)."""

    field: str
    message: str


def check_request_against_spec(
    request: OrderRequest | Mapping[str, Any], spec: BundlesSpec
) -> list[FieldError]:
    """Why Planet would refuse this order's item types or bundles; empty when it would not (or may not).

    Takes a validated ``OrderRequest`` or a raw request mapping (as an SQS message carries it); products
    without a string ``item_type`` and ``product_bundle`` (basemaps, or shapes the request model refuses
    anyway) are skipped.
    """
    products: Iterable[Any]
    if isinstance(request, OrderRequest):
        products = request.products
    else:
        raw = request.get("products")
        products = raw if isinstance(raw, list) else ()
    errors: list[FieldError] = []
    for position, product in enumerate(products):
        item_type: Any = None
        bundles: Any = None
        if isinstance(product, ScenesProduct):
            item_type, bundles = product.item_type, product.product_bundle
        elif isinstance(product, Mapping):
            item_type, bundles = product.get("item_type"), product.get("product_bundle")
        if isinstance(item_type, str) and isinstance(bundles, str):
            errors.extend(_product_errors(f"products.{position}", item_type, bundles, spec))
    return errors


def _product_errors(where: str, item_type: str, bundles: str, spec: BundlesSpec) -> list[FieldError]:
    known_type = spec.item_type(item_type)
    if known_type is None:
        if not spec.authoritative:
            return []  # maybe newer than the fallback table: Planet decides
        message = f"unknown item type {item_type!r}; {_suggest(item_type, spec.item_types, 'item types')}"
        return [FieldError(f"{where}.item_type", message)]
    offered = spec.bundles_for(known_type)
    errors = []
    for place, raw_name in enumerate(bundles.split(",")):
        name = raw_name.strip()
        label = "product bundle" if place == 0 else "fallback bundle"
        known_bundle = spec.bundle(name) if name else None
        if known_bundle is None:
            if spec.authoritative:  # the fallback table may not know a newer bundle: Planet decides
                problem = f"empty {label} name in {bundles!r}" if not name else f"unknown {label} {name!r}"
                message = f"{problem}; {_suggest(name, offered, f'bundles for {known_type}')}"
                errors.append(FieldError(f"{where}.product_bundle", message))
        elif known_bundle not in offered:
            message = f"{label} {name!r} is not available for item type {known_type}; " + _listing(
                offered, "it offers"
            )
            errors.append(FieldError(f"{where}.product_bundle", message))
    return errors


def _suggest(name: str, choices: Iterable[str], what: str) -> str:
    ordered = sorted(choices)
    close = difflib.get_close_matches(name, ordered, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return hint + _listing(ordered, f"Planet's {what}")


def _listing(names: list[str], what: str) -> str:
    if not names:
        return f"{what}: none"
    shown = ", ".join(names[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return f"{what}: {shown}{more}"


def refusal_body(errors: Iterable[FieldError]) -> dict[str, Any]:
    """Planet's 400 body for these errors: ``{"field": {name: [{"message": ...}]}, "general": [...]}``."""
    fields: dict[str, list[dict[str, str]]] = {}
    for error in errors:
        fields.setdefault(error.field, []).append({"message": error.message})
    return {"field": fields, "general": [{"message": _REFUSAL}]}


class BundlesSpecSource:
    """Planet's bundles spec, fetched at most once per ``ttl_seconds`` and shared by every request.

    When the fetch fails (Planet unreachable, an error status, an answer that is not a spec) the fallback
    table is used and Planet is asked again after ``retry_seconds``, so that an outage costs one slow
    request per interval, not one per order. Thread-safe; one fetch at a time.
    """

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        ttl_seconds: float = 3600,
        retry_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._spec: BundlesSpec | None = None
        self._fresh_until = float("-inf")

    def current(self) -> BundlesSpec:
        """The spec to check against now: Planet's while fresh, else a new fetch, else the fallback."""
        with self._lock:
            now = self._clock()
            if self._spec is not None and now < self._fresh_until:
                return self._spec
            try:
                spec = BundlesSpec.from_planet(self._fetch())
                self._fresh_until = now + self._ttl
            except Exception as exc:
                # Anything (Planet down, its key unreadable, an answer that is not a spec) must not turn an
                # order create into a 500: check against what is known instead.
                logger.warning(
                    "Planet's bundles spec is unavailable; checking against the fallback table",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
                )
                # A spec Planet sent earlier is newer than the table: keep it until Planet answers again.
                spec = (
                    self._spec
                    if self._spec is not None and self._spec.authoritative
                    else BundlesSpec.fallback()
                )
                self._fresh_until = now + self._retry
            self._spec = spec
            return spec

    def refusal(self, request: OrderRequest | Mapping[str, Any]) -> dict[str, Any] | None:
        """Planet's 400 body if the current spec refuses ``request``'s item types or bundles, else None."""
        errors = check_request_against_spec(request, self.current())
        return refusal_body(errors) if errors else None
