"""GET /orders/v2: query filters, sorting and keyset paging.

The page marker is opaque to clients: base64url JSON of the sort values of the last order on the
previous page. The next page holds the orders that sort strictly after it, so orders created between
two page requests neither repeat nor shift an order off the pages.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from .orders import STATES, Order, Snapshot
from .timefmt import format_time, parse_time

SORT_FIELDS = ("name", "created_on", "state", "last_modified")
SOURCE_TYPES = ("scenes", "basemaps", "all")
MAX_PAGE_SIZE = 1000
# Newest first, the SDK-documented default.
DEFAULT_SORT = (("created_on", True),)

# One row to filter and sort: the order, its snapshot at request time, and its sort values.
Row = tuple[Order, Snapshot, dict[str, str]]


class ListQueryError(Exception):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "field": {self.parameter: [{"message": self.message}]},
            "general": [{"message": "Invalid query parameters"}],
        }


@dataclass(frozen=True)
class Interval:
    """start inclusive, end exclusive; a single instant matches that millisecond only."""

    start: datetime | None
    end: datetime | None
    instant: bool = False

    def contains(self, moment: datetime) -> bool:
        if self.instant:
            return moment == self.start
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


def _parse_interval(parameter: str, text: str) -> Interval:
    def instant(value: str) -> datetime | None:
        if value in ("..", ""):
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise ListQueryError(parameter, f"'{value}' is not an RFC 3339 date-time") from exc

    if "/" not in text:
        moment = instant(text)
        if moment is None:
            raise ListQueryError(parameter, "expected a date-time or an interval")
        return Interval(moment, moment, instant=True)
    start_text, _, end_text = text.partition("/")
    return Interval(instant(start_text), instant(end_text))


def _split_values(args: MultiDict[str, str], parameter: str) -> list[str]:
    """Values of a parameter given repeated (`?state=a&state=b`) or as a comma list (`?state=a,b`)."""
    return [v.strip() for raw in args.getlist(parameter) for v in raw.split(",") if v.strip()]


def _parse_sort(text: str | None) -> tuple[tuple[str, bool], ...]:
    if not text:
        return DEFAULT_SORT
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or words[0] not in SORT_FIELDS:
            raise ListQueryError("sort_by", f"'{part.strip()}' is not one of {', '.join(SORT_FIELDS)}")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise ListQueryError("sort_by", f"sort direction must be ASC or DESC, not '{words[1]}'")
        keys.append((words[0], direction == "DESC"))
    return tuple(keys)


def _parse_bool(parameter: str, text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ListQueryError(parameter, "expected true or false")
    return text.lower() == "true"


def _encode_marker(values: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, sort_keys=True).encode()).decode().rstrip("=")


def _decode_marker(text: str) -> dict[str, str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise ListQueryError("page_marker", "invalid page marker") from exc
    if not isinstance(values, dict) or not all(isinstance(values.get(k), str) for k in (*SORT_FIELDS, "id")):
        raise ListQueryError("page_marker", "invalid page marker")
    return values


def _comparator(sort: tuple[tuple[str, bool], ...]) -> Callable[[dict[str, str], dict[str, str]], int]:
    """Compare sort values by the requested keys, then by id so the order is total (needed by keyset paging).
    Timestamps compare correctly as strings because they all have the same fixed-width format."""

    def compare(a: dict[str, str], b: dict[str, str]) -> int:
        for name, descending in (*sort, ("id", False)):
            if a[name] != b[name]:
                result = -1 if a[name] < b[name] else 1
                return -result if descending else result
        return 0

    return compare


@dataclass(frozen=True)
class ListQuery:
    states: frozenset[str] | None
    source_types: frozenset[str] | None
    name: str | None
    name_contains: str | None
    created_on: Interval | None
    last_modified: Interval | None
    hosting: bool | None
    destination_ref: str | None
    all_users: bool
    sort: tuple[tuple[str, bool], ...]
    page_size: int
    marker: dict[str, str] | None

    @classmethod
    def parse(cls, args: MultiDict[str, str], default_page_size: int) -> ListQuery:
        """Raises ListQueryError for any invalid value."""
        states = _split_values(args, "state")
        if unknown := [s for s in states if s not in STATES]:
            raise ListQueryError(
                "state", f"unknown state '{unknown[0]}'; expected one of {', '.join(STATES)}"
            )
        # Upstream lists scenes orders only unless told otherwise, for backwards compatibility.
        source_types = _split_values(args, "source_type") or ["scenes"]
        if unknown := [s for s in source_types if s not in SOURCE_TYPES]:
            raise ListQueryError("source_type", f"unknown source_type '{unknown[0]}'")
        user_id = args.get("user_id")
        if user_id not in (None, "all"):
            raise ListQueryError("user_id", "the fake knows no user ids; only user_id=all is supported")
        page_size_text = args.get("page_size")
        if page_size_text is None:
            page_size = default_page_size
        elif not page_size_text.isdigit() or not 1 <= int(page_size_text) <= MAX_PAGE_SIZE:
            raise ListQueryError("page_size", f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
        else:
            page_size = int(page_size_text)
        created_on, last_modified = args.get("created_on"), args.get("last_modified")
        hosting, marker = args.get("hosting"), args.get("page_marker")
        return cls(
            states=frozenset(states) or None,
            source_types=None if "all" in source_types else frozenset(source_types),
            name=args.get("name"),
            name_contains=args.get("name__contains"),
            created_on=_parse_interval("created_on", created_on) if created_on else None,
            last_modified=_parse_interval("last_modified", last_modified) if last_modified else None,
            hosting=_parse_bool("hosting", hosting) if hosting is not None else None,
            destination_ref=args.get("destination_ref"),
            all_users=user_id == "all",
            sort=_parse_sort(args.get("sort_by")),
            page_size=page_size,
            marker=_decode_marker(marker) if marker else None,
        )

    def _matches(self, order: Order, snap: Snapshot) -> bool:
        checks = (
            self.states is None or snap.state in self.states,
            self.source_types is None or order.source_type in self.source_types,
            self.name is None or order.name == self.name,
            self.name_contains is None or self.name_contains in order.name,
            self.created_on is None or self.created_on.contains(order.created),
            self.last_modified is None or self.last_modified.contains(snap.last_modified),
            self.hosting is None or order.has_hosting == self.hosting,
            self.destination_ref is None or order.destination_ref == self.destination_ref,
        )
        return all(checks)

    def page(self, orders: list[Order], now: datetime) -> tuple[list[Row], str | None]:
        """One page of matching rows, and the marker of the next page (None on the last page)."""
        rows: list[Row] = []
        for order in orders:
            snap = order.snapshot(now)
            if self._matches(order, snap):
                values = {
                    "id": order.id,
                    "name": order.name,
                    "created_on": format_time(order.created),
                    "state": snap.state,
                    "last_modified": format_time(snap.last_modified),
                }
                rows.append((order, snap, values))
        compare = _comparator(self.sort)

        def compare_rows(a: Row, b: Row) -> int:
            return compare(a[2], b[2])

        rows.sort(key=functools.cmp_to_key(compare_rows))
        if self.marker is not None:
            marker = self.marker
            rows = [row for row in rows if compare(row[2], marker) > 0]
        page = rows[: self.page_size]
        next_marker = _encode_marker(page[-1][2]) if len(rows) > self.page_size else None
        return page, next_marker
