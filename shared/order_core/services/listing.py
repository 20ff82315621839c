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
  followed by ``ASC`` (the default) or ``DESC``. Without it, the newest order comes first; ``sort_by=state``
  alone lists each state's orders newest first. Ties are broken by ascending id, so the order is total and
  paging is deterministic.
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

``page`` works on orders in memory (the fake Planet's way). A store with indexes uses ``plan(query)`` and
``page_of_runs`` instead, which give the same pages while reading a bounded number of orders per request
(see the section "paging an ordered store" below).
"""

from __future__ import annotations

import base64
import binascii
import functools
import heapq
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SORT",
    "MAX_EXAMINED",
    "MAX_EXAMINED_EMPTY",
    "MAX_PAGE_SIZE",
    "NAME_KEY_CHARS",
    "SORT_FIELDS",
    "SOURCE_TYPES",
    "STATES",
    "Interval",
    "ListPlan",
    "ListQuery",
    "ListQueryError",
    "Run",
    "SortKey",
    "page",
    "page_of_runs",
    "parse_query",
    "plan",
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
    if [key.field for key in keys] == ["state"]:
        # Within a state, newest first (the default order): an index serves that, so a page reads about a
        # page; ordered by id alone a state would be one group, read whole (docs/decisions.md).
        keys.append(SortKey("created_on", descending=True))
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


# --- paging an ordered store -------------------------------------------------------------------------------
#
# ``page`` needs every order in memory. A store with indexes serves the same pages reading only a bounded
# number of orders: ``plan(query)`` says which ordered runs of the caller's orders to read (``Run``), and
# ``page_of_runs`` pages what the store yields for them, with the same filters, order and markers as ``page``.
#
# A run is in the order of its index key, which agrees with the query's order only up to *groups*: orders
# whose index keys tie at the precision the list compares (a millisecond, the leading characters of a name,
# a state). Every order of one group sorts after every order of the groups before it, so reading whole
# groups and sorting each exactly gives the query's order. Groups are read whole; a millisecond or a name
# holds few orders, a state with another second key than ``created_on`` may hold many (docs/decisions.md;
# ``sort_by=state`` alone is read with ``created_on DESC`` as its second key).

#: Orders after the page marker that one request examines at most (at least page_size + 1). A filter no
#: index serves may find fewer than page_size matches among them: the page is then short and ``next``
#: continues after the last order examined, so a client following ``next`` sees every match.
MAX_EXAMINED = 1000
#: ... except that a page with a ``next`` is never empty below this many: Planet's SDK
#: (``planet.models.Paged``) stops at the first page without orders, ``next`` or not. Only past this many
#: examined orders without a match does a request answer an empty page that continues.
MAX_EXAMINED_EMPTY = 10_000
#: A store orders names by this many leading characters (an index key has a size limit).
NAME_KEY_CHARS = 200
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Run:
    """One ordered run of the caller's orders, which a store reads through one of its indexes.

    ``order_by`` is ``created_on`` (alone, or with one ``state`` or an exact ``name``), ``last_modified``
    or ``name``. For the timestamps, ``start`` (inclusive) and ``end`` (exclusive) bound the run; they are a
    superset of what the query wants, the filters are applied again on what is read. For ``name``,
    ``name_bound`` limits the run to names whose first ``NAME_KEY_CHARS`` characters are at or after it
    (ascending) or at or before it (descending).
    """

    order_by: str
    descending: bool
    state: str | None = None
    name: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    name_bound: str | None = None


@dataclass(frozen=True)
class ListPlan:
    """The runs to read for a query; ``merge``: interleave them by group (else read one after another)."""

    runs: tuple[Run, ...]
    merge: bool
    group: Callable[[_SortValues], tuple[str, ...]]
    descending: bool


def plan(query: ListQuery) -> ListPlan:
    """Which runs of the caller's orders hold the query's pages, in its order, after its marker."""
    first, marker = query.sort[0], query.marker
    if first.field in ("created_on", "last_modified"):
        field = first.field
        start, end = _time_bounds(query.created_on if field == "created_on" else query.last_modified)
        if marker is not None:
            start, end = _after_marker(start, end, getattr(marker, field), first.descending)
        base = Run(field, first.descending, start=start, end=end)
        runs: tuple[Run, ...]
        if start is not None and end is not None and start >= end:
            runs = ()
        elif field == "created_on" and query.name is not None:
            runs = (Run(**{**asdict(base), "name": query.name}),)
        elif field == "created_on" and query.states:
            runs = tuple(Run(**{**asdict(base), "state": state}) for state in sorted(query.states))
        else:
            runs = (base,)
        return ListPlan(runs, True, _group_by(field), first.descending)
    if first.field == "name":
        bound = marker.name[:NAME_KEY_CHARS] if marker is not None else None
        return ListPlan(
            (Run("name", first.descending, name_bound=bound),), False, _name_group, first.descending
        )
    # By state: one run per state, in the sort's order of states; within a state by creation if that is
    # the next sort key, else the whole state is one group.
    states = sorted(query.states or STATES, reverse=first.descending)
    if marker is not None:
        states = [s for s in states if (s <= marker.state if first.descending else s >= marker.state)]
    second = query.sort[1] if len(query.sort) > 1 else None
    by_creation = second is not None and second.field == "created_on"
    descending = second.descending if second is not None and by_creation else True
    start, end = _time_bounds(query.created_on)
    state_runs = []
    for state in states:
        run_start, run_end = start, end
        if marker is not None and by_creation and state == marker.state:
            run_start, run_end = _after_marker(start, end, marker.created_on, descending)
        if run_start is None or run_end is None or run_start < run_end:
            state_runs.append(Run("created_on", descending, state=state, start=run_start, end=run_end))
    group = _state_and_creation_group if by_creation else _state_group
    return ListPlan(tuple(state_runs), False, group, first.descending)


def page_of_runs(
    runs: Sequence[Iterable[PlanetOrder]], listing_plan: ListPlan, query: ListQuery, *, self_url: str
) -> dict[str, Any]:
    """The list response body from what a store read for ``plan(query).runs``, one iterable per run.

    The iterables are consumed lazily and only as far as the page needs: whole groups, until the page
    and one more order are found, or until ``MAX_EXAMINED`` orders after the marker were examined and one
    matched (or ``MAX_EXAMINED_EMPTY`` were, none matching). The page may then be short, and ``next``
    continues after the last order examined.
    """
    compare = _comparator(query.sort)
    marker = query.marker
    group = listing_plan.group
    rows: Iterator[tuple[_SortValues, PlanetOrder]]
    keyed = [((_sort_values(order), order) for order in run) for run in runs]
    if listing_plan.merge and len(keyed) > 1:
        rows = heapq.merge(*keyed, key=lambda row: group(row[0]), reverse=listing_plan.descending)
    else:
        rows = itertools.chain.from_iterable(keyed)
    limit = max(MAX_EXAMINED, query.page_size + 1)
    matched: list[tuple[_SortValues, PlanetOrder]] = []
    examined, furthest, current, stopped = 0, None, None, False
    for values, order in rows:
        this_group = group(values)
        if this_group != current:
            if len(matched) > query.page_size or (
                examined >= limit and (matched or examined >= MAX_EXAMINED_EMPTY)
            ):
                stopped = True
                break
            current = this_group
        if marker is not None and compare(values, marker) <= 0:
            continue
        examined += 1
        if furthest is None or compare(values, furthest) > 0:
            furthest = values
        if query.matches(order):
            matched.append((values, order))
    sort_key = functools.cmp_to_key(compare)
    matched.sort(key=lambda row: sort_key(row[0]))
    listed = matched[: query.page_size]
    links = {"_self": self_url}
    after = listed[-1][0] if len(matched) > query.page_size else furthest if stopped else None
    if after is not None:
        next_params = [*query.params, ("page_marker", _encode_marker(after))]
        links["next"] = f"{self_url}?{urlencode(next_params, quote_via=quote)}"
    return {"_links": links, "orders": [_list_item(order) for _, order in listed]}


def _time_bounds(interval: Interval | None) -> tuple[datetime | None, datetime | None]:
    """Bounds, at microsecond precision, that hold every order the interval (at millisecond) matches."""
    if interval is None:
        return None, None
    start = (
        interval.start.replace(microsecond=interval.start.microsecond // 1000 * 1000)
        if interval.start
        else None
    )
    end = _plus_millisecond(interval.end) if interval.end is not None else None
    return start, end


def _plus_millisecond(moment: datetime) -> datetime | None:
    try:
        return moment + _MILLISECOND
    except OverflowError:
        return None


def _after_marker(
    start: datetime | None, end: datetime | None, marked: str, descending: bool
) -> tuple[datetime | None, datetime | None]:
    """Narrow a run to the marker's millisecond and what sorts after it."""
    moment = _parse_time(marked)
    if descending:
        limit = _plus_millisecond(moment)
        return start, limit if end is None or (limit is not None and limit < end) else end
    return (moment if start is None or moment > start else start), end


def _group_by(field: str) -> Callable[[_SortValues], tuple[str, ...]]:
    return lambda values: (getattr(values, field),)


def _name_group(values: _SortValues) -> tuple[str, ...]:
    return (values.name[:NAME_KEY_CHARS],)


def _state_group(values: _SortValues) -> tuple[str, ...]:
    return (values.state,)


def _state_and_creation_group(values: _SortValues) -> tuple[str, ...]:
    return (values.state, values.created_on)
