"""An index-aware DynamoDB Query for moto: O(items returned) instead of O(table), same answers.

moto 5.2.5 answers every Query (``moto/dynamodb/models/table.py``, ``Table.query``) by iterating every item
of the table, sorting the partition and skipping to ``ExclusiveStartKey``: one list page over 100,000
orders costs about a second locally whatever its ``Limit``, where DynamoDB's cost follows the items it
returns. This module keeps, per table, one sorted structure per (index, partition) - the base table and
each secondary index - maintained on every write moto makes, and answers a Query from it by bisecting to
the start key and the key condition's bounds, then walking only the page.

It answers exactly what moto answers (items, order, ``LastEvaluatedKey``, ``Count``/``ScannedCount``, the
1 MB page limit, filters, projections, ``Limit``, ``ScanIndexForward``): it reuses moto's own start-key
predicate, key comparison, projection and last-key functions, and re-checks every item it walks. Anything
it does not handle (legacy ``QueryFilter``, multi-attribute keys, binary keys, a key condition moto would
refuse, an item whose key attribute has another type than its definition, a structure found stale) goes to
moto's own implementation. ``tests/unit/test_dynamodb_index.py`` compares both over random tables,
writes and queries (hypothesis).

Writes are followed where moto makes them: ``Table.put_item`` and ``Table.delete_item`` (which BatchWrite,
TransactWrite, PartiQL and the local stack's restore go through) and ``DynamoDBBackend.update_item`` (which
changes the stored item in place). A table object the structure has not seen (a new table, a transaction's
rollback copy) or whose indexes changed is indexed again at its next use.

Local only: installed by the local stack where it starts moto and by ``benchmarks/list_orders.py``; it
changes nothing in AWS, where DynamoDB's Query already costs what it returns.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, GlobalSecondaryIndex, Table
from sortedcontainers import SortedDict

__all__ = ["install", "installed", "stats", "uninstall"]

_ORDERABLE = ("S", "N")  # key types whose moto ordering (cast_value) this module reproduces
# Past this many bytes of results, an item after the key condition's range could end the page by size alone
# (moto checks the size of every item it walks, matching or not): walk those items as moto does.
_TAIL_SIZE_RISK = RESULT_SIZE_LIMIT // 2


class _Unsupported(Exception):
    """This Query is left to moto's own implementation."""


@dataclass
class _View:
    """The base table or one secondary index: partition value -> SortedDict(sort key -> Item)."""

    name: str | None
    hash_attr: str
    range_attr: str | None  # the attribute a key condition compares (None: no range key)
    sort_attrs: list[str]  # moto's sort order: index hash, index range, table hash, table range
    types: dict[str, str]  # attribute -> declared type, for every key attribute used above
    needs_range: bool  # a GSI with a range key holds only items that have it
    orderable: bool
    hash_attrs: list[str] = field(default_factory=list)  # as moto passes them to its start-key predicate
    range_attrs: list[str | None] = field(default_factory=list)
    partitions: dict[Any, SortedDict] = field(default_factory=dict)
    entries: dict[Any, tuple[Any, tuple[Any, ...]]] = field(default_factory=dict)  # pk -> (partition, key)
    trusted: bool = True  # False once an item's key attribute has another type than declared

    def locate(self, item: Item) -> tuple[Any, tuple[Any, ...]] | None:
        """(partition, sort key) of the item in this view, or None when the view does not hold it."""
        attrs = item.attrs
        value = attrs.get(self.hash_attr)
        if value is None or (self.needs_range and self.range_attr not in attrs):
            return None
        key = []
        for name in self.sort_attrs:
            attr = attrs.get(name)
            if attr is None:
                return None
            if attr.type != self.types.get(name):
                self.trusted = False
                return None
            key.append(attr.cast_value)
        if value.type != self.types.get(self.hash_attr):
            self.trusted = False
            return None
        return value.cast_value, tuple(key)

    def remove(self, pk: Any) -> None:
        entry = self.entries.pop(pk, None)
        if entry is not None:
            partition = self.partitions[entry[0]]
            partition.pop(entry[1], None)
            if not partition:
                del self.partitions[entry[0]]

    def add(self, pk: Any, item: Item) -> None:
        where = self.locate(item)
        if where is not None:
            self.entries[pk] = where
            self.partitions.setdefault(where[0], SortedDict())[where[1]] = item


class _TableIndex:
    def __init__(self, table: Table) -> None:
        self.lock = threading.RLock()
        self.signature = _signature(table)
        self.items_id = id(table.items)
        self.views: dict[str | None, _View] = {view.name: view for view in _views(table)}
        grouped: dict[str | None, dict[Any, dict[tuple[Any, ...], Item]]] = {name: {} for name in self.views}
        for item in _stored_items(table):
            pk = (item.hash_key, item.range_key)
            for name, view in self.views.items():
                where = view.locate(item)
                if where is not None:
                    view.entries[pk] = where
                    grouped[name].setdefault(where[0], {})[where[1]] = item
        for name, partitions in grouped.items():  # one sort per partition, not one insertion per item
            self.views[name].partitions = {value: SortedDict(keyed) for value, keyed in partitions.items()}

    def current(self, table: Table) -> bool:
        return self.items_id == id(table.items) and self.signature == _signature(table)

    def reindex(self, table: Table, pk: tuple[Any, Any]) -> None:
        item = _stored(table, pk)
        for view in self.views.values():
            view.remove(pk)
            if item is not None:
                view.add(pk, item)


def _signature(table: Table) -> tuple[Any, ...]:
    return (
        table.hash_key_attr,
        table.range_key_attr,
        tuple((index.name, repr(index.schema)) for index in table.all_indexes()),
        repr(table.attr),
    )


def _stored_items(table: Table) -> list[Item]:
    if table.range_key_attr:
        return [item for by_range in list(table.items.values()) for item in list(by_range.values())]
    return [item for item in list(table.items.values()) if isinstance(item, Item)]


def _stored(table: Table, pk: tuple[Any, Any]) -> Item | None:
    hash_key, range_key = pk
    if table.range_key_attr:
        return table.items.get(hash_key, {}).get(range_key) if range_key is not None else None
    found = table.items.get(hash_key)
    return found if isinstance(found, Item) else None


def _views(table: Table) -> list[_View]:
    types = {definition["AttributeName"]: definition["AttributeType"] for definition in table.attr}
    base_hash, base_range = [table.hash_key_attr], [table.range_key_attr]
    views = [
        _view(table, None, table.hash_key_attr, table.range_key_attr, base_hash, base_range, False, types)
    ]
    for index in table.all_indexes():
        hashes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"]
        ranges = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"]
        if len(hashes) != 1 or len(ranges) > 1:
            continue  # multi-attribute keys: moto's own Query
        # What moto's Table.query passes to its sort and start-key predicate for this index.
        range_attrs: list[str | None]
        if ranges:
            range_attrs = [ranges[0], table.range_key_attr]
        elif isinstance(index, GlobalSecondaryIndex) and table.range_key_attr:
            range_attrs = [table.range_key_attr, table.range_key_attr]
        else:
            range_attrs = [table.hash_key_attr, table.range_key_attr]
        hash_attrs = [hashes[0], table.hash_key_attr]
        views.append(
            _view(
                table,
                index.name,
                hashes[0],
                ranges[0] if ranges else None,
                hash_attrs,
                range_attrs,
                True,
                types,
            )
        )
    return views


def _view(
    table: Table,
    name: str | None,
    hash_attr: str,
    range_attr: str | None,
    hash_attrs: list[str],
    range_attrs: list[str | None],
    is_index: bool,
    types: dict[str, str],
) -> _View:
    sort_attrs = table._generate_attr_to_sort_by(hash_attrs, range_attrs)
    key_attrs = {hash_attr, *sort_attrs}
    return _View(
        name=name,
        hash_attr=hash_attr,
        range_attr=range_attr,
        sort_attrs=sort_attrs,
        types={attr: types[attr] for attr in key_attrs if attr in types},
        needs_range=is_index and range_attr is not None,
        orderable=all(types.get(attr) in _ORDERABLE for attr in key_attrs),
        hash_attrs=hash_attrs,
        range_attrs=range_attrs,
    )


# --- the registry of table structures -------------------------------------------------------------------

_indexes: weakref.WeakKeyDictionary[Table, _TableIndex] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()
_stats = {"fast": 0, "fallback": 0, "rebuilt": 0}
_originals: dict[str, Callable[..., Any]] = {}


def _index_for(table: Table) -> _TableIndex:
    with _registry_lock:
        index = _indexes.get(table)
        if index is None or not index.current(table):
            index = _TableIndex(table)
            _indexes[table] = index
            _stats["rebuilt"] += 1
        return index


def _forget(table: Table) -> None:
    with _registry_lock:
        _indexes.pop(table, None)


def stats() -> dict[str, int]:
    """How many Queries were answered here, left to moto, and how many structures were (re)built."""
    return dict(_stats)


# --- the Query ------------------------------------------------------------------------------------------


def _first(count: int, predicate: Callable[[int], bool]) -> int:
    """The first position in [0, count) where ``predicate`` (false, then true) is true; count if none."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _range_bounds(keys: Any, position: int, comparison: str, values: list[Any]) -> tuple[int, int]:
    """[lo, hi) of the ascending sort keys whose component ``position`` meets the key condition."""
    count = len(keys)

    def value(i: int) -> Any:
        return keys[i][position]

    first = values[0]
    if comparison in ("=", "EQ"):
        below, above = (lambda x: x < first), (lambda x: x > first)
    elif comparison in ("<", "LT"):
        below, above = (lambda x: False), (lambda x: x >= first)
    elif comparison in ("<=", "LE"):
        below, above = (lambda x: False), (lambda x: x > first)
    elif comparison in (">", "GT"):
        below, above = (lambda x: x <= first), (lambda x: False)
    elif comparison in (">=", "GE"):
        below, above = (lambda x: x < first), (lambda x: False)
    elif comparison == "BETWEEN" and len(values) == 2:
        last = values[1]
        below, above = (lambda x: x < first), (lambda x: x > last)
    elif comparison == "BEGINS_WITH" and isinstance(first, str):
        below, above = (lambda x: x < first), (lambda x: x > first and not x.startswith(first))
    else:
        raise _Unsupported(comparison)
    lo = _first(count, lambda i: not below(value(i)))
    hi = lo + _first(count - lo, lambda i: above(value(lo + i)))
    return lo, hi


def _query(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    if filter_kwargs or (limit is not None and (not isinstance(limit, int) or limit < 1)):
        raise _Unsupported("QueryFilter or Limit")
    index = _index_for(table)
    with index.lock:
        view = index.views.get(index_name)
        if view is None or not view.trusted or not view.orderable:
            raise _Unsupported("view")
        if index_name is not None:
            secondary = table.get_index(index_name)
            if consistent_read and isinstance(secondary, GlobalSecondaryIndex):
                raise _Unsupported("moto refuses it")
            conditions = list(hash_key_conditions or [])
            if len(conditions) != 1 or conditions[0][0] != view.hash_attr:
                raise _Unsupported("hash condition")
            partition_key: DynamoType | None = conditions[0][1]
        else:
            partition_key = hash_key
        if partition_key is None or partition_key.type != view.types.get(view.hash_attr):
            raise _Unsupported("hash value")
        range_conditions = list(range_key_conditions or [])
        if range_comparison:
            if (
                view.range_attr is None
                or len(range_conditions) != 1
                or range_conditions[0][0] != view.range_attr
            ):
                raise _Unsupported("range condition")
            if any(obj.type != view.types.get(view.range_attr) for obj in range_objs):
                raise _Unsupported("range value type")
        elif range_conditions:
            raise _Unsupported("range condition without comparison")

        partition = view.partitions.get(partition_key.cast_value)
        keys = partition.keys() if partition is not None else []
        count = len(keys)

        def at(scan: int) -> Item:  # the item at this position in scan order
            item: Item = partition.peekitem(scan if scan_index_forward else count - 1 - scan)[1]  # type: ignore[union-attr]
            return item

        start = 0
        if exclusive_start_key is not None:
            for name in view.sort_attrs:  # a partial or mistyped start key: moto's own answer (or error)
                given = exclusive_start_key.get(name)
                if not isinstance(given, dict) or list(given) != [view.types.get(name)]:
                    raise _Unsupported("start key")

            def past_start(scan: int) -> bool:
                return not table._item_comes_before_dct(
                    at(scan), exclusive_start_key, view.hash_attrs, view.range_attrs, scan_index_forward
                )

            start = _first(count, past_start)
        if range_comparison:
            position = view.sort_attrs.index(view.range_attr)  # type: ignore[arg-type]
            lo, hi = _range_bounds(keys, position, range_comparison, [obj.cast_value for obj in range_objs])
            first, stop = (lo, hi) if scan_index_forward else (count - hi, count - lo)

            def matches(item: Item) -> bool:
                return bool(item.attrs[view.range_attr].compare(range_comparison, range_objs))  # type: ignore[index]

            # The bounds are checked with moto's own comparison: the item just outside each must not match.
            if first > 0 and matches(at(first - 1)):
                raise _Unsupported("bounds")
            if stop < count and matches(at(stop)):
                raise _Unsupported("bounds")
        else:
            first, stop = 0, count

            def matches(item: Item) -> bool:
                return True

        results: list[Item] = []
        result_size = 0
        last_evaluated_key = None
        scan = max(start, first)
        while scan < stop:
            item = at(scan)
            pk = (item.hash_key, item.range_key)
            if _stored(table, pk) is not item or view.locate(item) != view.entries.get(pk):
                _forget(table)  # changed behind our back: index again next time
                raise _Unsupported("stale")
            if len(results) == limit or result_size + item.size() > RESULT_SIZE_LIMIT:
                last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
                break
            if not matches(item):
                raise _Unsupported("inconsistent bounds")
            results.append(item)
            result_size += item.size()
            scan += 1
        else:
            # moto walks on through the items after the condition's range (none of them matches) and ends
            # the page with a last key at the first one that is past the limit or the 1 MB size.
            tail = max(scan, stop)
            if tail < count and results:
                if len(results) == limit:
                    last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
                elif result_size > _TAIL_SIZE_RISK:
                    for rest in range(tail, count):
                        if result_size + at(rest).size() > RESULT_SIZE_LIMIT:
                            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
                            break
        scanned_count = len(results)
        results = copy.deepcopy(results)
    if index_name:
        secondary = table.get_index(index_name)
        results = [secondary.project(result) for result in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [result.project(projection_expressions) for result in results]
    return results, scanned_count, last_evaluated_key


# --- installation ---------------------------------------------------------------------------------------

_enabled = True  # the property test compares both answers on the same table


def _patched_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    if _enabled:
        try:
            answer = _query(self, *args, **kwargs)
        except Exception:  # anything unforeseen (or refused) is moto's own to answer
            answer = None
        if answer is not None:
            _stats["fast"] += 1
            return answer
    _stats["fallback"] += 1
    return _originals["query"](self, *args, **kwargs)


def _patched_put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item: Item = _originals["put_item"](self, *args, **kwargs)
    _after_write(self, (item.hash_key, item.range_key))
    return item


def _patched_delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    item: Item | None = _originals["delete_item"](self, hash_key, range_key)
    _after_write(self, (hash_key, range_key if self.range_key_attr else None))
    return item


def _patched_update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Any:
    try:
        return _originals["update_item"](self, table_name, key, *args, **kwargs)
    finally:  # the item may have changed in place even when the update then failed
        table = self.tables.get(table_name)
        if table is not None:
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError, AttributeError):
                _forget(table)
            else:
                _after_write(table, (hash_value, range_value))


def _after_write(table: Table, pk: tuple[Any, Any]) -> None:
    index = _index_for(table)  # builds it at a table's first write: later writes keep it up to date
    with index.lock:
        index.reindex(table, pk)


def install() -> None:
    """Patch moto's DynamoDB (idempotent, process-wide)."""
    if _originals:
        return
    _originals.update(
        query=Table.query,
        put_item=Table.put_item,
        delete_item=Table.delete_item,
        update_item=DynamoDBBackend.update_item,
    )
    Table.query = _patched_query  # type: ignore[method-assign]
    Table.put_item = _patched_put_item  # type: ignore[method-assign]
    Table.delete_item = _patched_delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _patched_update_item  # type: ignore[method-assign]


def uninstall() -> None:
    if not _originals:
        return
    Table.query = _originals["query"]  # type: ignore[method-assign]
    Table.put_item = _originals["put_item"]  # type: ignore[method-assign]
    Table.delete_item = _originals["delete_item"]  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _originals["update_item"]  # type: ignore[method-assign]
    _originals.clear()
    with _registry_lock:
        _indexes.clear()


def installed() -> bool:
    return bool(_originals)


def set_enabled(enabled: bool) -> None:
    """Answer Queries here (True) or with moto's own Query (False); writes are followed either way."""
    global _enabled
    _enabled = enabled
