"""The local stack's index-aware DynamoDB Query answers exactly what moto's own Query answers.

``gateway_local.dynamodb_index`` replaces moto's O(table) Query with one that walks only the page. The proof
is a property: over random tables (hash-only like OrdersTable, or hash + number range key), random writes
(put, update in place, delete, batch write, transactions that commit or roll back) and random queries (base
table and GSIs with and without a range key, every key condition, both directions, Limit, filters,
projections, the 1 MB page limit, every page through LastEvaluatedKey), each answer is compared with moto's
own answer on the same table, and each must have been answered by the new path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from gateway_local import dynamodb_index
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

TABLE = "items"
GSIS = {
    "g-r": ("g", "r"),  # string range key, like tenant-created_on
    "g-n": ("g", "n"),  # number range key
    "h-only": ("h", None),  # no range key, like OrdersTable's `active`
}
TYPES = {"pk": "S", "sk": "N", "g": "S", "r": "S", "n": "N", "h": "S"}
PKS = [f"p{i}" for i in range(16)]


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    was_installed = dynamodb_index.installed()
    dynamodb_index.install()
    yield
    dynamodb_index.set_enabled(True)
    if not was_installed:
        dynamodb_index.uninstall()


def _create(client: Any, with_range: bool) -> None:
    keys = ["pk", "sk"] if with_range else ["pk"]
    projections = [{"ProjectionType": "ALL"}, {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["big"]}]
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": TYPES[name]} for name in [*keys, "g", "r", "n", "h"]
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}]
        + ([{"AttributeName": "sk", "KeyType": "RANGE"}] if with_range else []),
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [{"AttributeName": hash_attr, "KeyType": "HASH"}]
                + ([{"AttributeName": range_attr, "KeyType": "RANGE"}] if range_attr else []),
                "Projection": projections[i % 2],
            }
            for i, (name, (hash_attr, range_attr)) in enumerate(GSIS.items())
        ],
    )


def _value(name: str, raw: Any) -> dict[str, str]:
    return {TYPES[name]: str(raw)}


strings = st.text(alphabet="ab", min_size=1, max_size=3)
numbers = st.integers(min_value=-3, max_value=3)
keys = st.tuples(st.sampled_from(PKS), numbers)
items = st.fixed_dictionaries(
    {  # most items in most indexes, so that queries meet full partitions
        "key": keys,
        "g": st.one_of(st.sampled_from(["a", "b"]), st.sampled_from(["a", "b"]), st.none()),
        "r": st.one_of(strings, strings, strings, st.none()),
        "n": st.one_of(numbers, numbers, numbers, st.none()),
        "h": st.one_of(st.sampled_from(["x", "y"]), st.none()),
    },
    optional={"big": st.sampled_from([10, 300_000])},  # a few large items reach moto's 1 MB page limit
).map(lambda spec: {name: value for name, value in spec.items() if value is not None})
writes = st.one_of(  # puts twice as likely: tables fill up
    st.tuples(st.just("put"), items),
    st.tuples(st.just("put"), items),
    st.tuples(st.just("delete"), keys),
    st.tuples(
        st.just("update"),
        keys,
        st.one_of(
            st.tuples(st.sampled_from(["g", "h"]), st.sampled_from(["a", "b", "x", "y"])),
            st.tuples(st.just("r"), strings),
            st.tuples(st.just("n"), numbers),
            st.tuples(st.sampled_from(["g", "r", "n", "h"]), st.none()),  # REMOVE
        ),
    ),
    st.tuples(st.just("batch"), st.lists(items, min_size=1, max_size=3), st.lists(keys, max_size=2)),
    st.tuples(st.just("transact"), items, keys, st.booleans()),
    st.tuples(st.just("mistyped"), keys),  # rare: a key attribute of another type than its definition
)
COMPARISONS = ["=", "<", "<=", ">", ">=", "between", "begins_with"]


def _queries(index: str | None, hashes: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "index": st.just(index),
            "hash": st.sampled_from(hashes),
            "comparison": st.one_of(st.none(), st.sampled_from(COMPARISONS)),
            "values": st.tuples(strings, strings, numbers, numbers),
            "forward": st.booleans(),
            "limit": st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
            "filter": st.sampled_from([None, "exists", "not_b"]),
            "projection": st.booleans(),
        }
    )


queries = st.one_of(
    _queries(None, PKS[:3]),
    _queries("g-r", ["a", "b"]),
    _queries("g-n", ["a", "b"]),
    _queries("h-only", ["x", "y"]),
)


def _key(with_range: bool, key: tuple[str, int]) -> dict[str, Any]:
    pk, sk = key
    return {"pk": _value("pk", pk), **({"sk": _value("sk", sk)} if with_range else {})}


def _item(with_range: bool, spec: dict[str, Any]) -> dict[str, Any]:
    item = _key(with_range, spec["key"])
    for name in ("g", "r", "n", "h"):
        if name in spec:
            item[name] = _value(name, spec[name])
    if "big" in spec:
        item["big"] = {"S": "x" * spec["big"]}
    return item


def _write(client: Any, with_range: bool, write: tuple[Any, ...]) -> bool:
    """Apply the write; True when it stored a key attribute of another type than its definition."""
    kind = write[0]
    try:
        if kind == "mistyped":  # moto does not check the type of an index's key attributes
            # (only `h`: moto's own Query fails on a partition that mixes types, as with `n`)
            item = {**_key(with_range, write[1]), "h": {"N": "1"}}
            client.put_item(TableName=TABLE, Item=item)
            return True
        if kind == "put":
            client.put_item(TableName=TABLE, Item=_item(with_range, write[1]))
        elif kind == "delete":
            client.delete_item(TableName=TABLE, Key=_key(with_range, write[1]))
        elif kind == "update":
            _, key, (name, raw) = write
            if raw is None:
                expression, values = "REMOVE #a", None
            else:
                expression, values = "SET #a = :v", {":v": _value(name, raw)}
            client.update_item(
                TableName=TABLE,
                Key=_key(with_range, key),
                UpdateExpression=expression,
                ExpressionAttributeNames={"#a": name},
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        elif kind == "batch":
            _, puts, deletes = write
            requests = {
                str(spec["key"] if with_range else spec["key"][0]): {
                    "PutRequest": {"Item": _item(with_range, spec)}
                }
                for spec in puts
            }
            for key in deletes:
                requests.setdefault(
                    str(key if with_range else key[0]), {"DeleteRequest": {"Key": _key(with_range, key)}}
                )
            client.batch_write_item(RequestItems={TABLE: list(requests.values())})
        elif kind == "transact":
            _, spec, other, must_exist = write
            if (spec["key"] if with_range else spec["key"][0]) == (other if with_range else other[0]):
                return
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": _item(with_range, spec)}},
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": _key(with_range, other),
                            "UpdateExpression": "SET g = :g",
                            "ExpressionAttributeValues": {":g": {"S": "b"}},
                            # fails (and rolls the Put back) when the item does not exist
                            **({"ConditionExpression": "attribute_exists(pk)"} if must_exist else {}),
                        }
                    },
                ]
            )
    except ClientError as error:  # refused writes (wrong types, failed conditions) change nothing
        assert error.response["Error"]["Code"] in {"ValidationException", "TransactionCanceledException"}
    return False


def _request(with_range: bool, query: dict[str, Any]) -> dict[str, Any] | None:
    index = query["index"]
    hash_attr, range_attr = GSIS[index] if index else ("pk", "sk" if with_range else None)
    names = {"#h": hash_attr}
    values = {":h": _value(hash_attr, query["hash"])}
    condition = "#h = :h"
    comparison = query["comparison"]
    if comparison is not None and range_attr is not None:
        low_s, high_s, low_n, high_n = query["values"]
        low, high = (low_s, high_s) if TYPES[range_attr] == "S" else (low_n, high_n)
        names["#r"] = range_attr
        values[":lo"] = _value(range_attr, low)
        if comparison == "between":
            values[":hi"] = _value(range_attr, high)
            condition += " AND #r BETWEEN :lo AND :hi"
        elif comparison == "begins_with":
            if TYPES[range_attr] != "S":
                return None  # DynamoDB refuses begins_with on a number
            condition += " AND begins_with(#r, :lo)"
        else:
            condition += f" AND #r {comparison} :lo"
    request: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": condition,
        "ScanIndexForward": query["forward"],
    }
    if index:
        request["IndexName"] = index
    if query["limit"]:
        request["Limit"] = query["limit"]
    if query["filter"] == "exists":
        request["FilterExpression"] = "attribute_exists(#n)"
        names["#n"] = "n"
    elif query["filter"] == "not_b":
        request["FilterExpression"] = "#g <> :b"
        names["#g"] = "g"
        values[":b"] = {"S": "b"}
    if query.get("projection"):
        request["ProjectionExpression"] = "pk, #h"
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return request


def _both(client: Any, request: dict[str, Any], fast: bool = True) -> dict[str, Any]:
    """The answer of the index-aware Query, checked against moto's own on the same table.

    ``fast``: the index-aware Query must have answered (not left it to moto).
    """
    answers = []
    for enabled in (True, False):
        dynamodb_index.set_enabled(enabled)
        fast_before = dynamodb_index.stats()["fast"]
        answer = client.query(**request)
        answer.pop("ResponseMetadata")
        if enabled and fast:
            assert dynamodb_index.stats()["fast"] == fast_before + 1, f"left to moto: {request}"
        answers.append(answer)
    dynamodb_index.set_enabled(True)
    ours, moto = answers
    assert ours == moto, request
    return ours


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    with_range=st.booleans(),
    fill=st.lists(items, min_size=6, max_size=30, unique_by=lambda spec: spec["key"]),
    writes_=st.lists(writes, min_size=2, max_size=24),
    queries_=st.lists(queries, min_size=1, max_size=8),
)
def test_dynamodb_index_random_tables_writes_and_queries_answer_as_moto(
    with_range: bool,
    fill: list[dict[str, Any]],
    writes_: list[tuple[Any, ...]],
    queries_: list[dict[str, Any]],
) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, with_range)
        mistyped = False  # then moto's own Query answers (and the answers must still be equal)
        half = len(writes_) // 2
        first = [("put", spec) for spec in fill] + writes_[:half]
        for batch in (first, writes_[half:]):  # queries meet the table, then it changes under them
            for write in batch:
                mistyped = _write(client, with_range, write) or mistyped
            for query in queries_:
                request = _request(with_range, query)
                if request is not None:
                    _every_page(client, request, not mistyped)
        # Then every partition of every index, whole and in pages of 2: an item the structure lost or kept
        # in the wrong place shows here.
        for index, values in {None: PKS[:4], "g-r": "ab", "g-n": "ab", "h-only": "xy"}.items():
            for value in values:
                for limit in (None, 2):
                    query = {"index": index, "hash": value, "comparison": None, "values": ("a", "a", 0, 0)}
                    request = _request(with_range, {**query, "forward": True, "limit": limit, "filter": None})
                    if request is not None:
                        _every_page(client, request, not mistyped)


def _every_page(client: Any, request: dict[str, Any], fast: bool) -> None:
    """Each page, each from moto's own last key."""
    for _ in range(60):
        answer = _both(client, request, fast)
        if "LastEvaluatedKey" not in answer:
            return
        request = {**request, "ExclusiveStartKey": answer["LastEvaluatedKey"]}
    raise AssertionError(f"more than 60 pages: {request}")


def test_dynamodb_index_orders_table_list_page_reads_only_the_page() -> None:
    """On the template's OrdersTable, a list page's Query walks its page, not the tenant's orders."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create(client, with_range=False)
        for i in range(300):
            client.put_item(
                TableName=TABLE, Item={"pk": {"S": f"o{i:04d}"}, "g": {"S": "a"}, "r": {"S": f"{i:04d}"}}
            )
        walked: list[int] = []
        original_size = dynamodb_index.Item.size

        def counting_size(item: Any) -> int:
            walked.append(1)
            return int(original_size(item))

        request = {
            "TableName": TABLE,
            "IndexName": "g-r",
            "KeyConditionExpression": "g = :g AND r < :r",
            "ExpressionAttributeValues": {":g": {"S": "a"}, ":r": {"S": "0250"}},
            "ScanIndexForward": False,
            "Limit": 20,
        }
        page = _both(client, request)
        assert [item["r"]["S"] for item in page["Items"]] == [f"{i:04d}" for i in range(249, 229, -1)]
        dynamodb_index.Item.size = counting_size  # type: ignore[method-assign]
        try:
            client.query(**request)
        finally:
            dynamodb_index.Item.size = original_size  # type: ignore[method-assign]
        assert len(walked) <= 2 * 21, "the Query walked more than its page"
