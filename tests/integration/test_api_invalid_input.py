"""ApiFunction under moto: every kind of invalid input gets a Planet-shaped 4xx naming what is wrong.

Planet's shapes: 400 ``{"field": {"<dotted path>": [{"message": ...}]}, "general": [{"message": ...}]}``,
every other status ``{"message": ...}``. Nothing invalid may reach the intake queue, and nothing may be a 5xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from harness import EVENTS, PLANET_KEY, ROOT, AwsStack, api_event, load_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORDERS = "/compute/ops/orders/v2"
BULK_CANCEL = "/compute/ops/bulk/orders/v2/cancel"
VALID = json.loads((EVENTS / "planet" / "create_scenes_direct.json").read_text())
OPEN_RING = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}


@pytest.fixture(scope="module")
def aws_stack() -> Iterator[AwsStack]:
    """The template in moto, once for this module (conftest's is per test): nothing here changes state."""
    from gateway_local.lambda_runtime import InProcessLambdas
    from gateway_local.provision import Provisioner, ProvisionSettings
    from gateway_local.template import load_template
    from moto import mock_aws
    from order_core import wiring

    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        settings = ProvisionSettings(secret_values={"PlanetApiKeySecret": PLANET_KEY})
        resources = Provisioner(load_template(ROOT / "template.yaml"), boto3.client, settings).provision()
        for spec in resources.functions.values():
            for key, value in spec.environment.items():
                monkeypatch.setenv(key, value)
        lambdas = InProcessLambdas()
        for spec in resources.functions.values():
            lambdas.add(spec)
        lambdas.install()
        wiring.reset()
        try:
            yield AwsStack(resources, lambdas, planet=None, completion_queue_url="")
        finally:
            lambdas.uninstall()
            wiring.reset()


def call(
    stack: AwsStack,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    multi_query: dict[str, list[str]] | None = None,
    tenant: str | None = "default",
) -> tuple[int, Any]:
    """One API Gateway proxy event through ApiFunction, as ``tenant`` (None: no authorizer context).

    ``multi_query`` gives every value of each parameter, as API Gateway does for a repeated one."""
    event = api_event(method, path, body=body, query=query, headers=headers)
    if multi_query:
        event["queryStringParameters"] = {key: values[-1] for key, values in multi_query.items()}
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"]["authorizer"] = {"tenant": tenant} if tenant else None
    response = stack.invoke("ApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


def create(stack: AwsStack, order: Any, **kwargs: Any) -> tuple[int, Any]:
    return call(stack, "POST", ORDERS, body=json.dumps(order), **kwargs)


def assert_planet_400(body: Any, field: str | None, says: str) -> None:
    """Planet's 400 shape, naming ``field`` (None: the body as a whole) with a message containing ``says``."""
    assert set(body) == {"field", "general"}
    assert body["general"] and all(set(m) == {"message"} for m in body["general"])
    if field is None:
        assert body["field"] == {}
        assert any(says in m["message"] for m in body["general"]), body
    else:
        assert field in body["field"], body
        assert any(says in m["message"] for m in body["field"][field]), body


def intake_is_empty(stack: AwsStack) -> bool:
    got = boto3.client("sqs").receive_message(QueueUrl=stack.ref("IntakeQueue"), MaxNumberOfMessages=10)
    return not got.get("Messages")


# --- POST /orders/v2: the body -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "field", "says"),
    [
        pytest.param(VALID | {"name": 5}, "name", "must be a string", id="wrong-type-name"),
        pytest.param(VALID | {"products": "PSScene"}, "products", "must be a list", id="wrong-type-products"),
        pytest.param(
            VALID | {"subscription_id": "5"}, "subscription_id", "integer", id="wrong-type-subscription"
        ),
        pytest.param(
            VALID | {"source_type": "landsat"}, "source_type", "got 'landsat'", id="unknown-source-type"
        ),
        pytest.param(
            VALID
            | {
                "products": [
                    {
                        "item_ids": [f"i{n}" for n in range(501)],
                        "item_type": "PSScene",
                        "product_bundle": "visual",
                    }
                ]
            },
            "products",
            "at most 500 items",
            id="501-items",
        ),
        pytest.param(VALID | {"products": []}, "products", "at least one product", id="empty-products"),
        pytest.param(
            VALID | {"tools": [{"clip": {"aoi": OPEN_RING}}]},
            "tools.0.clip.aoi.coordinates.0",
            "not closed",
            id="polygon-ring-not-closed",
        ),
        pytest.param(
            VALID
            | {"tools": [{"clip": {"aoi": {"type": "Polygon", "coordinates": [[[0, 0], [1, 91], [0, 0]]]}}}]},
            "tools.0.clip.aoi.coordinates.0",
            "at least 4 positions",
            id="polygon-too-few-positions",
        ),
        pytest.param(
            VALID | {"tools": [{"clip": {"aoi": {"type": "Point", "coordinates": [0, 0]}}}]},
            "tools.0.clip.aoi.type",
            "'Polygon' or 'MultiPolygon'",
            id="geometry-not-a-polygon",
        ),
        pytest.param(
            VALID | {"tools": [{"sharpen": {}}]}, "tools.0", "unknown tool 'sharpen'", id="unknown-tool"
        ),
        pytest.param(VALID | {"delivry": {}}, "delivry", "did you mean 'delivery'", id="unknown-field"),
    ],
)
def test_api_create_invalid_order_answers_400_naming_the_field(
    aws_stack: AwsStack, order: dict[str, Any], field: str, says: str
) -> None:
    status, body = create(aws_stack, order)

    assert status == 400
    assert_planet_400(body, field, says)
    assert intake_is_empty(aws_stack)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param('{"name": "x",', "not valid JSON: Expecting property name", id="malformed-json"),
        pytest.param("", "not valid JSON: Expecting value at line 1 column 1", id="empty-body"),
        pytest.param('{"name": NaN}', "NaN is not a JSON value", id="nan"),
        pytest.param('{"metadata": {"x": 1e999}}', "1e999 is out of range", id="infinite-number"),
        pytest.param("[" * 5000 + "]" * 5000, "nests deeper than 32 levels", id="nested-5000-deep"),
        pytest.param("[1, 2]", "must be a JSON object", id="not-an-object"),
        pytest.param(b'{"name": "\xff"}', "not valid UTF-8", id="not-utf-8"),
        pytest.param(
            '{"subscription_id": ' + "9" * 5000 + "}", "integer string conversion", id="5000-digits"
        ),
    ],
)
def test_api_create_unreadable_body_answers_400_saying_why(
    aws_stack: AwsStack, raw: str | bytes, says: str
) -> None:
    status, body = call(aws_stack, "POST", ORDERS, body=raw)

    assert status == 400
    assert_planet_400(body, None, says)


def test_api_create_body_that_is_not_base64_despite_the_flag_answers_400(aws_stack: AwsStack) -> None:
    event = load_event("api_create_order.json") | {"body": "not base64!", "isBase64Encoded": True}
    event["requestContext"]["authorizer"] = {"tenant": "default"}

    response = aws_stack.invoke("ApiFunction", event)

    assert response["statusCode"] == 400
    assert_planet_400(json.loads(response["body"]), None, "not valid base64")


def test_api_create_body_nested_too_deep_under_a_field_names_the_field(aws_stack: AwsStack) -> None:
    order = VALID | {
        "metadata": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    }

    status, body = create(aws_stack, order)

    assert status == 400
    assert_planet_400(body, "metadata", "nests deeper than 32 levels")


def test_api_create_oversized_body_answers_413_with_the_limit(aws_stack: AwsStack) -> None:
    order = VALID | {"metadata": {"padding": "x" * (200 * 1024)}}

    status, body = create(aws_stack, order)

    assert status == 413
    assert set(body) == {"message"}
    assert "the limit is 196608 bytes" in body["message"]
    assert intake_is_empty(aws_stack)


def test_api_create_order_too_large_to_store_answers_413(aws_stack: AwsStack) -> None:
    # 100 KB as UTF-8 on the wire, but 300 KB stored (each é is a 6-byte \u00e9) and twice (the name).
    order = VALID | {"name": "é" * 50_000}

    status, body = call(aws_stack, "POST", ORDERS, body=json.dumps(order, ensure_ascii=False))

    assert status == 413
    assert body["message"].startswith("The order as stored")
    assert intake_is_empty(aws_stack)


@pytest.mark.parametrize("key", ["", " ", "k" * 256])
def test_api_create_invalid_idempotency_key_answers_400_naming_the_header(
    aws_stack: AwsStack, key: str
) -> None:
    status, body = create(aws_stack, VALID, headers={"Idempotency-Key": key})

    assert status == 400
    assert_planet_400(body, "Idempotency-Key", "1 to 255 characters")
    assert intake_is_empty(aws_stack)


def test_api_without_tenant_answers_401_in_planets_shape(aws_stack: AwsStack) -> None:
    status, body = create(aws_stack, VALID, tenant=None)

    assert status == 401
    assert body == {"message": "Invalid or missing API key: use Authorization: api-key <key>"}


# --- order ids, bulk cancel, list ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("order_id", ["not-a-uuid", "3f1d1c3e", "%2e%2e"])
def test_api_non_uuid_order_id_answers_404_naming_it(aws_stack: AwsStack, method: str, order_id: str) -> None:
    status, body = call(aws_stack, method, f"{ORDERS}/{order_id}")

    assert (status, body) == (404, {"message": f"Could not load order ID: {order_id}."})


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        pytest.param(
            {"order_ids": ["3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10", ""]}, "order_ids.1", "not an order id"
        ),
        pytest.param({"order_ids": []}, "order_ids", "non-empty list"),
        pytest.param({"order_ids": "3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10"}, "order_ids", "non-empty list"),
        pytest.param({"ids": []}, "order_ids", "non-empty list"),
    ],
)
def test_api_bulk_cancel_invalid_body_answers_400_naming_the_field(
    aws_stack: AwsStack, payload: dict[str, Any], field: str, says: str
) -> None:
    status, body = call(aws_stack, "POST", BULK_CANCEL, body=json.dumps(payload))

    assert status == 400
    assert_planet_400(body, field, says)


def test_api_bulk_cancel_oversized_body_answers_413(aws_stack: AwsStack) -> None:
    status, body = call(aws_stack, "POST", BULK_CANCEL, body=json.dumps({"order_ids": ["x" * 200_000]}))

    assert status == 413
    assert set(body) == {"message"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "sleeping"}, "state"),
        ({"source_type": "landsat"}, "source_type"),
        ({"page_size": "0"}, "page_size"),
        ({"created_on": "yesterday"}, "created_on"),
        ({"hosting": "maybe"}, "hosting"),
        ({"sort_by": "size DESC"}, "sort_by"),
        ({"page_marker": "%%%"}, "page_marker"),
    ],
)
def test_api_list_invalid_query_answers_400_naming_the_parameter(
    aws_stack: AwsStack, query: dict[str, str], field: str
) -> None:
    status, body = call(aws_stack, "GET", ORDERS, query=query)

    assert status == 400
    assert_planet_400(body, field, "")


# --- POST /orders/v2: item types and bundles, as Planet's bundles spec has them ----------------------------


@pytest.fixture
def planet_unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planet cannot be reached (connection refused): the API checks against the fallback table."""
    from order_core import wiring

    monkeypatch.setenv("PLANET_API_URL", "http://127.0.0.1:9/compute/ops")
    wiring.reset()
    yield
    wiring.reset()


def drain_intake(stack: AwsStack) -> int:
    sqs, url = boto3.client("sqs"), stack.ref("IntakeQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


@pytest.mark.parametrize(
    ("bundle", "says"),
    [
        ("analytic", "product bundle 'analytic' is not available for item type PSScene"),
        (
            "analytic_udm2,pansharpened",
            "fallback bundle 'pansharpened' is not available for item type PSScene",
        ),
    ],
)
def test_api_create_bundle_planet_does_not_offer_for_the_item_type_answers_400_naming_it(
    aws_stack: AwsStack, planet_unreachable: None, bundle: str, says: str
) -> None:
    order = VALID | {"products": [VALID["products"][0] | {"product_bundle": bundle}]}

    status, body = create(aws_stack, order)

    assert status == 400
    assert_planet_400(body, "products.0.product_bundle", says)
    assert intake_is_empty(aws_stack)


def test_api_create_names_the_fallback_table_does_not_know_are_left_to_planet(
    aws_stack: AwsStack, planet_unreachable: None
) -> None:
    order = VALID | {
        "products": [{"item_ids": ["x"], "item_type": "PelicanScene2", "product_bundle": "visual"}]
    }

    status, body = create(aws_stack, order)

    assert (status, body["state"]) == (202, "queued")
    assert drain_intake(aws_stack) == 1


def test_api_create_shapes_planet_documents_answer_202(aws_stack: AwsStack, planet_unreachable: None) -> None:
    antimeridian = [[[179.9, -16.1], [181.76, -16.1], [181.76, -15.8], [179.9, -15.8], [179.9, -16.1]]]
    orders = [
        VALID | {"tools": [{"clip": {"aoi": {"type": "Polygon", "coordinates": antimeridian}}}]},
        VALID | {"tools": [{"clip": {"aoi": {"type": "ref", "content": "pl:features/my/fields/f-1"}}}]},
        VALID
        | {
            "delivery": {
                "s3_compatible": {
                    "endpoint": "https://s3.example.net",
                    "bucket": "b",
                    "region": "r",
                    "access_key_id": "ak",
                    "secret_access_key": "sk",
                }
            }
        },
    ]

    statuses = [create(aws_stack, order)[0] for order in orders]

    assert statuses == [202, 202, 202]
    assert drain_intake(aws_stack) == 3


# --- POST /orders/v2/cancel: bulk cancel at the path the seed document's prose names -----------------------


def test_api_bulk_cancel_alias_path_validates_like_bulk_cancel(aws_stack: AwsStack) -> None:
    status, body = call(
        aws_stack, "POST", "/compute/ops/orders/v2/cancel", body=json.dumps({"order_ids": []})
    )

    assert status == 400
    assert_planet_400(body, "order_ids", "non-empty list")


def test_api_bulk_cancel_alias_path_answers_planets_bulk_result(aws_stack: AwsStack) -> None:
    unknown = "3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10"

    status, body = call(
        aws_stack, "POST", "/compute/ops/orders/v2/cancel", body=json.dumps({"order_ids": [unknown]})
    )

    assert status == 200
    assert body["result"]["succeeded"] == {"count": 0}
    assert body["result"]["failed"]["failures"] == [
        {"order_id": unknown, "message": f"No such order ID: {unknown}."}
    ]


# --- hostile input: a Planet-shaped 400 naming the field, or a sensible 200; never a 5xx -------------------

LISTER = "hostile-lister"
LONE_SURROGATE = "\ud800"


@pytest.fixture(scope="module")
def listed_orders(aws_stack: AwsStack) -> list[str]:
    """Three orders of their own tenant, recorded without queue messages (so the intake stays empty)."""
    from order_core import wiring
    from order_core.models.planet import OrderRequest
    from order_core.services.orders import new_record

    request = OrderRequest.model_validate(VALID)
    records = [new_record(request, LISTER) for _ in range(3)]
    for record in records:
        wiring.orders_repo().create(record)
    return [record.order_id for record in records]


def marker(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


MARKER_FIELDS = ("id", "name", "created_on", "state", "last_modified")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"page_size": ["9" * 5000]}, "page_size", id="page-size-5000-digits"),
        pytest.param({"page_size": ["1" + "0" * 400]}, "page_size", id="page-size-10-to-the-400"),
        pytest.param({"page_size": ["-3"]}, "page_size", id="page-size-negative"),
        pytest.param({"page_size": ["2.5"]}, "page_size", id="page-size-float"),
        pytest.param({"page_marker": [marker([1, 2])]}, "page_marker", id="marker-json-not-an-object"),
        pytest.param(
            {"page_marker": [marker(dict.fromkeys(MARKER_FIELDS, 7))]}, "page_marker", id="marker-wrong-types"
        ),
        pytest.param(
            {"page_marker": [base64.urlsafe_b64encode(b"\xff\xfe garbage").decode()]},
            "page_marker",
            id="marker-base64-of-garbage",
        ),
        pytest.param(
            {"page_marker": [base64.urlsafe_b64encode(b"[" * 100_000).decode()]},
            "page_marker",
            id="marker-nested-100000-deep",
        ),
        pytest.param({"page_marker": ["QUFB" * 200_000]}, "page_marker", id="marker-huge"),
        pytest.param({"name": [f"a{LONE_SURROGATE}"]}, "name", id="name-lone-surrogate"),
        pytest.param(
            {"name__contains": [LONE_SURROGATE]}, "name__contains", id="name-contains-lone-surrogate"
        ),
        pytest.param({"created_on": ["9999-12-31T23:59:59-01:00"]}, "created_on", id="created-on-past-9999"),
        pytest.param({"created_on": ["2024-01-01/2024-13-01"]}, "created_on", id="created-on-month-13"),
        pytest.param({"sort_by": ["name DESC ASC"]}, "sort_by", id="sort-by-three-words"),
        pytest.param({"sort_by": [",,"]}, "sort_by", id="sort-by-empty-keys"),
        pytest.param({"x": [LONE_SURROGATE], "page_size": ["1"]}, "x", id="unknown-parameter-lone-surrogate"),
    ],
)
def test_api_list_hostile_query_answers_400_naming_the_parameter(
    aws_stack: AwsStack, listed_orders: list[str], query: dict[str, list[str]], field: str
) -> None:
    status, body = call(aws_stack, "GET", ORDERS, multi_query=query, tenant=LISTER)

    assert status == 400
    assert_planet_400(body, field, "")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"name": ["a\x00b"]}, id="name-with-nul"),
        pytest.param({"name__contains": ["x" * 20_000]}, id="name-contains-20000-characters"),
        pytest.param({"page_size": ["1", "oops"]}, id="page-size-repeated-first-wins"),
        pytest.param({"created_on": ["2030-01-01T00:00:00Z/2020-01-01T00:00:00Z"]}, id="created-on-reversed"),
        pytest.param({"page_size": ["1"], "x": ["\x00"]}, id="unknown-parameter-with-nul"),
        pytest.param({"last_modified": ["/"], "page_size": ["1"]}, id="last-modified-open-both-ends"),
    ],
)
def test_api_list_odd_but_valid_query_answers_200_with_links_that_work(
    aws_stack: AwsStack, listed_orders: list[str], query: dict[str, list[str]]
) -> None:
    status, body = call(aws_stack, "GET", ORDERS, multi_query=query, tenant=LISTER)

    assert status == 200
    assert set(body) == {"_links", "orders"}
    if "next" in body["_links"]:
        parts = urlsplit(body["_links"]["next"])
        status, _ = call(
            aws_stack, "GET", ORDERS, multi_query=parse_qs(parts.query, keep_blank_values=True), tenant=LISTER
        )
        assert status == 200


def test_api_list_marker_of_another_tenant_lists_only_the_callers_orders(
    aws_stack: AwsStack, listed_orders: list[str]
) -> None:
    _, first = call(aws_stack, "GET", ORDERS, multi_query={"page_size": ["1"]}, tenant=LISTER)
    theirs = parse_qs(urlsplit(first["_links"]["next"]).query)["page_marker"]

    status, body = call(aws_stack, "GET", ORDERS, multi_query={"page_marker": theirs}, tenant="someone-else")

    assert (status, body["orders"]) == (200, [])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(json.dumps(VALID | {"name": LONE_SURROGATE}), "name", id="name"),
        pytest.param(json.dumps(VALID | {"metadata": {"k": f"v{LONE_SURROGATE}"}}), "metadata.k", id="value"),
        pytest.param(
            json.dumps(VALID | {"metadata": {LONE_SURROGATE: 1}}),
            "metadata.\\ud800",
            id="key-escaped-in-field",
        ),
    ],
)
def test_api_create_lone_surrogate_answers_400_naming_where(
    aws_stack: AwsStack, raw: str, field: str
) -> None:
    assert "\\ud800" in raw  # the JSON escape a client sends, not the character

    status, body = call(aws_stack, "POST", ORDERS, body=raw)

    assert status == 400
    assert_planet_400(body, field, "lone UTF-16 surrogate")
    assert intake_is_empty(aws_stack)


def test_api_bulk_cancel_lone_surrogate_in_an_id_answers_400(aws_stack: AwsStack) -> None:
    status, body = call(aws_stack, "POST", BULK_CANCEL, body='{"order_ids": ["\\udfff"]}')

    assert status == 400
    assert_planet_400(body, "order_ids.0", "lone UTF-16 surrogate")


@pytest.mark.parametrize("token", [LONE_SURROGATE, "é.é.é", "a.b.c", "x" * 10_000])
def test_api_download_hostile_token_answers_401(aws_stack: AwsStack, token: str) -> None:
    status, body = call(aws_stack, "GET", "/compute/ops/download", query={"token": token}, tenant=None)

    assert (status, body) == (401, {"message": "invalid download token"})


# Values a client can put in a query string, hostile ones weighted in.
_LONE_SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
_HOSTILE_VALUES = st.one_of(
    st.text(max_size=30),
    st.builds(lambda a, s: a + s, st.text(max_size=4), _LONE_SURROGATES),
    st.from_regex(r"[-+]?[0-9]{0,8}(\.[0-9]*)?", fullmatch=True),
    st.integers(min_value=4300, max_value=5000).map(lambda n: "9" * n),
    st.sampled_from(
        ["queued", "all", "name DESC", "..", "2024-01-01T00:00:00Z/..", "9999-12-31T23:59:59-12:00"]
    ),
    st.binary(max_size=30).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.fixed_dictionaries(
        {k: st.one_of(st.text(max_size=8), st.integers(), st.none()) for k in MARKER_FIELDS}
    ).map(marker),
)
_PARAMETERS = st.sampled_from(
    [
        *("state", "source_type", "name", "name__contains", "created_on", "last_modified", "hosting"),
        *("destination_ref", "user_id", "sort_by", "page_size", "page_marker", "x"),
    ]
)


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=st.dictionaries(_PARAMETERS | _LONE_SURROGATES, st.lists(_HOSTILE_VALUES, min_size=1, max_size=2))
)
def test_api_list_fuzzed_query_answers_200_or_400_naming_a_given_parameter(
    aws_stack: AwsStack, listed_orders: list[str], query: dict[str, list[str]]
) -> None:
    status, body = call(aws_stack, "GET", ORDERS, multi_query=query, tenant=LISTER)

    assert status in (200, 400), body
    if status == 400:
        assert_planet_400(body, next(iter(body["field"]), None), "")
        assert set(body["field"]) <= {key.encode("utf-8", "backslashreplace").decode() for key in query}


def test_api_create_fuzzed_strings_answer_202_or_400_naming_the_field(aws_stack: AwsStack) -> None:
    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(name=_HOSTILE_VALUES, note=_HOSTILE_VALUES)
    def answers_202_or_400(name: str, note: str) -> None:
        raw = json.dumps(VALID | {"name": name, "metadata": {"note": note}})

        status, body = call(aws_stack, "POST", ORDERS, body=raw, tenant="hostile-creator")

        assert status in (202, 400, 413), body
        if status == 400:
            assert set(body["field"]) <= {"name", "metadata.note"}, body

    try:
        answers_202_or_400()
    finally:  # the accepted orders' messages go, so the intake stays empty for the other tests
        sqs, queue = boto3.client("sqs"), aws_stack.ref("IntakeQueue")
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(f"api-key pgw_{LONE_SURROGATE}", id="lone-surrogate"),
        pytest.param("api-key pgw_\x00", id="nul"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:").decode(), id="basic-not-utf-8"),
        pytest.param("Basic %%%", id="basic-not-base64"),
        pytest.param("api-key " + "k" * 20_000, id="20000-characters"),
    ],
)
def test_authorizer_hostile_authorization_header_is_unauthorized(
    aws_stack: AwsStack, authorization: str
) -> None:
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/compute/ops/orders/v2",
        "headers": {"Authorization": authorization},
    }

    result = aws_stack.invoke_raw("AuthorizerFunction", event)

    assert result.errored
    assert json.loads(result.payload)["errorMessage"] == "Unauthorized"  # API Gateway's 401, not a 500


# --- POST /orders/v2: what Planet refuses at create, refused here too (not a 202 that fails later) -------

_SKYSAT_51 = [{"item_ids": [f"s{n}" for n in range(51)], "item_type": "SkySatCollect", "product_bundle": "x"}]


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        pytest.param({"tools": [{"toar": {}}, {"toar": {}}]}, "tools.1", "more than once", id="tool-twice"),
        pytest.param(
            {"tools": [{"coregister": {"anchor_item": "20220101_x"}}]},
            "tools.0.coregister.anchor_item",
            "'20220101_x' is not among them",
            id="anchor-not-in-order",
        ),
        pytest.param(
            {"tools": [{"tile": {}}]}, "tools.0.tile.tile_size", "positive integer", id="tile-no-size"
        ),
        pytest.param(
            {"tools": [{"bandmath": {"b2": "b2"}}]}, "tools.0.bandmath.b1", "is required", id="no-b1"
        ),
        pytest.param(
            {"tools": [{"composite": {"group_by": "day"}}]},
            "tools.0.composite.group_by",
            "got 'day'",
            id="group-by-day",
        ),
        pytest.param(
            {"tools": [{"toar": {"scale_factor": -1}}]},
            "tools.0.toar.scale_factor",
            "positive integer",
            id="negative-scale-factor",
        ),
        pytest.param(
            {"delivery": {"single_archive": True}},
            "delivery.archive_type",
            "is required",
            id="single-archive",
        ),
        pytest.param(
            {"delivery": {"archive_filename": "a.zip"}},
            "delivery.archive_type",
            "is required",
            id="archive-filename",
        ),
        pytest.param(
            {"products": _SKYSAT_51, "delivery": {"archive_type": "zip"}},
            "products",
            "at most 50 items",
            id="zip-51-skysat",
        ),
    ],
)
def test_api_create_request_planet_refuses_answers_400_naming_the_field_with_nothing_queued(
    aws_stack: AwsStack, extra: dict[str, Any], field: str, says: str
) -> None:
    status, body = create(aws_stack, VALID | extra)

    assert status == 400, body
    assert_planet_400(body, field, says)
    assert intake_is_empty(aws_stack)
