"""Planet's list semantics for ``GET /compute/ops/orders/v2``: query filters, sorting and keyset paging.

This module is the single implementation of those semantics. The gateway's own list endpoint and the fake
Planet API (``local/planet_fake``) both call it, so the two cannot drift apart. It is pure: it knows
nothing about HTTP frameworks, storage or AWS, and imports only the standard library, because it runs on
the Lambda cold-start path. Callers do two things:

1. ``parse_query(params)`` turns the multi-valued query string (API Gateway's
   ``multiValueQueryStringParameters``, or werkzeug's ``request.args.to_dict(flat=False)``) into a
   ``ListQuery``. Any invalid value raises ``ListQueryError``, whose ``body()`` is Planet's 400 body.
2. ``page(orders, query, self_url=...)`` takes orders shaped as Planet's API returns them, filters, sorts
   and pages them, and returns the response body: ``{"_links": {"_self", "next"?}, "orders": [...]}``.

Which orders the caller may see at all (the API key's or tenant's own, or everyone's with ``user_id=all``)
is the caller's business: ``ListQuery.user_id`` carries the raw parameter and this module does not judge it.

The semantics, after ``shared/reference/planet-orders-api.md`` section 2.3:

- ``state`` and ``source_type`` take several values, repeated (``?state=a&state=b``) or as a comma list
  (``?state=a,b``); an order matches if it has any of them. ``source_type`` defaults to ``scenes``;
  ``all`` lists every source type. An order without ``source_type`` is a scenes order.
- ``name`` matches exactly and ``name__contains`` by case-sensitive substring.
- ``created_on`` and ``last_modified`` take an interval ``start/end``, ``start/..`` or ``../end`` (start
  inclusive, end exclusive) or a single RFC 3339 instant, which matches that millisecond only.
- ``hosting=true`` keeps orders with a ``hosting`` block, ``hosting=false`` those without one.
- ``destination_ref`` matches ``delivery.destination.ref``.
- ``sort_by`` is a comma list of ``name``, ``created_on``, ``state`` or ``last_modified``, each optionally
  followed by ``ASC`` (the default) or ``DESC``. Without it, the newest order comes first. Ties are broken
  by ascending id, so the order is total and paging is deterministic.
- ``page_size`` is an integer from 1 to ``MAX_PAGE_SIZE``; the caller chooses the default.
- Any other parameter is ignored, but repeated in ``_links.next``.
- A name or value that is not Unicode text (a lone UTF-16 surrogate, which the JSON of a proxy event can
  spell as ``\\ud800``) is refused: it can be neither compared as text nor repeated in a link.

Paging is by key, not by offset. The page marker is opaque to clients: base64url JSON of the sort values
of the last order on the previous page. The next page holds the orders that sort strictly after it, so
orders created between two page requests neither repeat nor push an order off the pages. A marker names no
tenant: given to another key, it only positions that key's own list. One that is not exactly what this
module writes is refused. ``_links.next``
is an absolute URL that repeats every query parameter with the new marker (Planet's SDK follows it as is),
and is absent on the last page.

Timestamps are compared at millisecond precision, the precision Planet writes them with.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SORT",
    "MAX_PAGE_SIZE",
    "SORT_FIELDS",
    "SOURCE_TYPES",
    "STATES",
    "Interval",
    "ListQuery",
    "ListQueryError",
    "SortKey",
    "page",
    "parse_query",
]

STATES = ("queued", "running", "failed", "success", "partial", "cancelled")
SOURCE_TYPES = ("scenes", "basemaps", "all")
SORT_FIELDS = ("name", "created_on", "state", "last_modified")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20
#: A marker holds the last order's name; this bounds what is decoded, far above any real name.
MAX_MARKER_LENGTH = 512 * 1024
#: Values echoed in error messages are cut to this many characters.
_SHOWN_LENGTH = 60

# A query string with every value of each parameter, as API Gateway and werkzeug give it.
QueryParams = Mapping[str, Sequence[str]]
# One order as Planet's API returns it.
PlanetOrder = Mapping[str, Any]


class ListQueryError(ValueError):
    """An invalid query parameter value; ``body()`` is what Planet answers with status 400."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "field": {self.parameter: [{"message": self.message}]},
            "general": [{"message": "Invalid query parameters"}],
        }


@dataclass(frozen=True)
class Interval:
    """A ``created_on`` or ``last_modified`` filter: start inclusive, end exclusive, either open (None).

    A single instant (``instant=True``, with ``start == end``) matches that millisecond only.
    """

    start: datetime | None
    end: datetime | None
    instant: bool = False

    def contains(self, moment: datetime) -> bool:
        if self.instant:
            return moment == self.start
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class SortKey:
    field: str  # one of SORT_FIELDS
    descending: bool = False


# Newest first, the SDK-documented default.
DEFAULT_SORT = (SortKey("created_on", descending=True),)


@dataclass(frozen=True)
class _SortValues:
    """What an order sorts by, and what a page marker records of the last order of a page.

    Timestamps are in the fixed-width form ``YYYY-MM-DDTHH:MM:SS.mmmZ``, so they compare correctly as
    strings.
    """

    id: str
    name: str
    created_on: str
    state: str
    last_modified: str


@dataclass(frozen=True)
class ListQuery:
    """A parsed list query. ``None`` means "no filter" for every filter field."""

    states: frozenset[str] | None
    source_types: frozenset[str] | None  # None: all source types
    name: str | None
    name_contains: str | None
    created_on: Interval | None
    last_modified: Interval | None
    hosting: bool | None
    destination_ref: str | None
    user_id: str | None  # as given; scoping orders by user is the caller's business
    sort: tuple[SortKey, ...]
    page_size: int
    marker: _SortValues | None
    # Every (parameter, value) of the query as given, except page_marker: what `_links.next` repeats.
    params: tuple[tuple[str, str], ...]

    def matches(self, order: PlanetOrder) -> bool:
        """Whether a Planet-shaped order passes every filter of the query."""
        created_on, last_modified = self.created_on, self.last_modified
        return (
            (self.states is None or order["state"] in self.states)
            and (self.source_types is None or _source_type(order) in self.source_types)
            and (self.name is None or _name(order) == self.name)
            and (self.name_contains is None or self.name_contains in _name(order))
            and (created_on is None or created_on.contains(_timestamp(order, "created_on")))
            and (last_modified is None or last_modified.contains(_timestamp(order, "last_modified")))
            and (self.hosting is None or (order.get("hosting") is not None) == self.hosting)
            and (self.destination_ref is None or _destination_ref(order) == self.destination_ref)
        )


def parse_query(params: QueryParams, *, default_page_size: int = DEFAULT_PAGE_SIZE) -> ListQuery:
    """Parse a multi-valued query string into a ``ListQuery``.

    ``params`` maps each parameter to all its values; a bare string is taken as a single value. Single-valued
    parameters given more than once use their first value. ``default_page_size`` applies when the query has
    no ``page_size``. Raises ``ListQueryError`` naming the first invalid parameter.
    """
    values = {key: [raw] if isinstance(raw, str) else list(raw) for key, raw in params.items()}
    for key, given in values.items():
        if not all(_is_text(value) for value in (key, *given)):
            raise ListQueryError(_shown(key), "is not valid Unicode text (it holds a lone UTF-16 surrogate)")

    def first(parameter: str) -> str | None:
        given = values.get(parameter)
        return given[0] if given else None

    states = _split_values(values, "state")
    if unknown := [s for s in states if s not in STATES]:
        raise ListQueryError(
            "state", f"unknown state '{_shown(unknown[0])}'; expected one of {', '.join(STATES)}"
        )
    # Upstream lists scenes orders only unless told otherwise, for backwards compatibility.
    source_types = _split_values(values, "source_type") or ["scenes"]
    if unknown := [s for s in source_types if s not in SOURCE_TYPES]:
        raise ListQueryError("source_type", f"unknown source_type '{_shown(unknown[0])}'")
    created_on, last_modified = first("created_on"), first("last_modified")
    hosting, marker = first("hosting"), first("page_marker")
    return ListQuery(
        states=frozenset(states) or None,
        source_types=None if "all" in source_types else frozenset(source_types),
        name=first("name"),
        name_contains=first("name__contains"),
        created_on=_parse_interval("created_on", created_on) if created_on else None,
        last_modified=_parse_interval("last_modified", last_modified) if last_modified else None,
        hosting=_parse_bool("hosting", hosting) if hosting is not None else None,
        destination_ref=first("destination_ref"),
        user_id=first("user_id"),
        sort=_parse_sort(first("sort_by")),
        page_size=_parse_page_size(first("page_size"), default_page_size),
        marker=_decode_marker(marker) if marker else None,
        params=tuple((key, v) for key, given in values.items() if key != "page_marker" for v in given),
    )


def page(orders: Iterable[PlanetOrder], query: ListQuery, *, self_url: str) -> dict[str, Any]:
    """The list response body: one page of the orders that match ``query``, in its sort order.

    ``orders`` are shaped as Planet's API returns them: ``id``, ``name``, ``state``, ``source_type``
    (absent means scenes), ``created_on`` and ``last_modified`` as RFC 3339 strings, ``hosting`` present or
    not, ``_links``. They are not modified; listed copies keep only ``_links._self``. ``self_url`` is the
    absolute request URL without its query string: it is ``_links._self``, and ``_links.next`` is built
    from it, every query parameter and the new page marker. ``next`` is absent on the last page.
    Raises ``ValueError`` if an order has a timestamp that is not RFC 3339.
    """
    rows = [(_sort_values(order), order) for order in orders if query.matches(order)]
    compare = _comparator(query.sort)
    sort_key = functools.cmp_to_key(compare)
    rows.sort(key=lambda row: sort_key(row[0]))
    if query.marker is not None:
        marker = query.marker
        rows = [row for row in rows if compare(row[0], marker) > 0]
    listed = rows[: query.page_size]
    links = {"_self": self_url}
    if len(rows) > query.page_size:
        next_params = [*query.params, ("page_marker", _encode_marker(listed[-1][0]))]
        # quote, not quote_plus: "%20" is read as a space by every decoder, "+" not by all of them.
        links["next"] = f"{self_url}?{urlencode(next_params, quote_via=quote)}"
    return {"_links": links, "orders": [_list_item(order) for _, order in listed]}


# --- parsing -----------------------------------------------------------------------------------------------


def _is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text, i.e. has a UTF-8 form (a lone surrogate has none)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: str) -> str:
    """``value`` as an error message may quote it: lone surrogates escaped, long values cut."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOWN_LENGTH else text[:_SHOWN_LENGTH] + "..."


def _split_values(values: Mapping[str, list[str]], parameter: str) -> list[str]:
    """Values of a parameter given repeated (``?state=a&state=b``) or as a comma list (``?state=a,b``)."""
    return [v.strip() for raw in values.get(parameter, ()) for v in raw.split(",") if v.strip()]


def _parse_time(text: str) -> datetime:
    """An RFC 3339 instant; one without offset is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_interval(parameter: str, text: str) -> Interval:
    def bound(value: str) -> datetime | None:
        if value in ("..", ""):
            return None
        try:
            return _parse_time(value)
        except (ValueError, OverflowError) as exc:  # OverflowError: 9999-12-31T23:59:59-01:00 is past 9999
            raise ListQueryError(parameter, f"'{_shown(value)}' is not an RFC 3339 date-time") from exc

    if "/" not in text:
        moment = bound(text)
        if moment is None:
            raise ListQueryError(parameter, "expected a date-time or an interval")
        return Interval(moment, moment, instant=True)
    start_text, _, end_text = text.partition("/")
    return Interval(bound(start_text), bound(end_text))


def _parse_sort(text: str | None) -> tuple[SortKey, ...]:
    if not text:
        return DEFAULT_SORT
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or words[0] not in SORT_FIELDS:
            raise ListQueryError(
                "sort_by", f"'{_shown(part.strip())}' is not one of {', '.join(SORT_FIELDS)}"
            )
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise ListQueryError("sort_by", f"sort direction must be ASC or DESC, not '{_shown(words[1])}'")
        keys.append(SortKey(words[0], descending=direction == "DESC"))
    return tuple(keys)


def _parse_bool(parameter: str, text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ListQueryError(parameter, "expected true or false")
    return text.lower() == "true"


def _parse_page_size(text: str | None, default: int) -> int:
    if text is None:
        return default
    # isascii: str.isdigit accepts digits such as "²" that int() rejects. The length is checked before
    # int(), which refuses strings of more than 4300 digits with a ValueError.
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(MAX_PAGE_SIZE)):
        raise ListQueryError("page_size", f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
    size = int(digits or "0")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ListQueryError("page_size", f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


# --- page markers and sorting ------------------------------------------------------------------------------

_MARKER_FIELDS = tuple(f.name for f in fields(_SortValues))


def _encode_marker(values: _SortValues) -> str:
    return base64.urlsafe_b64encode(json.dumps(asdict(values), sort_keys=True).encode()).decode().rstrip("=")


_MARKER_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def _decode_marker(text: str) -> _SortValues:
    """The sort values a marker of ``_encode_marker`` holds; anything else is a ListQueryError."""
    invalid = ListQueryError("page_marker", "invalid page marker; use the one from the previous page's links")
    if len(text) > MAX_MARKER_LENGTH:
        raise invalid
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: "[[[[..." nested 100,000 deep
        raise invalid from None
    if not (
        isinstance(decoded, dict)
        and set(decoded) == set(_MARKER_FIELDS)
        and all(isinstance(value, str) and _is_text(value) for value in decoded.values())
        and decoded["state"] in STATES
        and all(_MARKER_TIME.fullmatch(decoded[k]) for k in ("created_on", "last_modified"))
    ):
        raise invalid
    return _SortValues(**{k: decoded[k] for k in _MARKER_FIELDS})


def _comparator(sort: tuple[SortKey, ...]) -> Callable[[_SortValues, _SortValues], int]:
    """Compare by the requested keys, then by id, so the order is total (keyset paging needs that)."""
    keys = (*sort, SortKey("id"))

    def compare(a: _SortValues, b: _SortValues) -> int:
        for key in keys:
            left, right = getattr(a, key.field), getattr(b, key.field)
            if left != right:
                result = -1 if left < right else 1
                return -result if key.descending else result
        return 0

    return compare


# --- reading Planet-shaped orders --------------------------------------------------------------------------


def _name(order: PlanetOrder) -> str:
    return str(order.get("name") or "")


def _source_type(order: PlanetOrder) -> str:
    return str(order.get("source_type") or "scenes")


def _destination_ref(order: PlanetOrder) -> str | None:
    delivery = order.get("delivery")
    destination = delivery.get("destination") if isinstance(delivery, Mapping) else None
    ref = destination.get("ref") if isinstance(destination, Mapping) else None
    return ref if isinstance(ref, str) else None


def _timestamp(order: PlanetOrder, key: str) -> datetime:
    """The order's timestamp at millisecond precision."""
    moment = _parse_time(str(order[key]))
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sort_values(order: PlanetOrder) -> _SortValues:
    return _SortValues(
        id=str(order["id"]),
        name=_name(order),
        created_on=_format_time(_timestamp(order, "created_on")),
        state=str(order["state"]),
        last_modified=_format_time(_timestamp(order, "last_modified")),
    )


def _list_item(order: PlanetOrder) -> dict[str, Any]:
    """The order as a list shows it: ``_links`` reduced to ``_self`` (no ``results``)."""
    links = order.get("_links")
    self_link = {"_self": links["_self"]} if isinstance(links, Mapping) and "_self" in links else {}
    return {**order, "_links": self_link}
