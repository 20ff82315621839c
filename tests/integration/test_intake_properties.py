"""Property: whatever a producer puts on the intake queue, SubmitFunction handles it without an unhandled
error, and each message ends either as an order of a valid tenant or in the DLQ with its reason.

Runs the real handler under moto (DynamoDB's item limit, SQS's attribute and character rules, Step
Functions) with the fake Planet behind it. Events are built by hand, so they can carry what SQS itself
would never deliver too (lone surrogates, empty attribute values, bodies over SQS's limit is the one thing
left out: no DLQ could take those back). Bounded and reproducible: derandomized, no example database,
``HYPOTHESIS_EXAMPLES`` examples (default 20, each a batch of 1 to 4 messages); set it higher to dig deeper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from harness import EVENTS, AwsStack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_core.adapters.messaging import REFUSAL_REASON_ATTRIBUTE, _sqs_text
from order_core.models.order import ACCEPTED_MESSAGE_TYPE
from order_core.models.tenancy import validate_tenant
from order_core.services.submit import DEFAULT_TENANT, KEY_REUSED, external_order_id, valid_idempotency_key

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "20"))
PREFIX = "orders"  # the template's ResultsPrefix default
PROBE = "probe"  # an extra attribute naming each message, to find it in the DLQ

ORDERS = [json.loads(p.read_text()) for p in sorted((EVENTS / "planet").glob("create_*.json"))]
ANY_TEXT = st.characters(exclude_categories=())  # lone surrogates and control characters included


@dataclass
class Attribute:
    data_type: str
    value: str | bytes


def attribute(text: st.SearchStrategy[str]) -> st.SearchStrategy[Attribute | None]:
    return st.one_of(
        st.none(),
        text.map(lambda v: Attribute("String", v)),
        st.binary(min_size=1, max_size=20).map(lambda v: Attribute("Binary", v)),
    )


TENANTS = attribute(
    st.one_of(
        st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True),
        st.sampled_from(
            ["default", "acme", "../..", "default/" + str(uuid.UUID(int=7)), "", "Ünï", "a" * 64]
        ),
        st.text(ANY_TEXT, max_size=80),
        st.integers(64, 20_000).map(lambda n: "t" * n),
    )
)
KEYS = attribute(
    st.one_of(
        st.sampled_from(["k-1", "k-2"]),  # reused across messages and examples
        st.text(max_size=40),
        st.text(ANY_TEXT, max_size=300),
    )
)
MESSAGE_TYPES = st.one_of(
    st.none(), st.none(), st.just(Attribute("String", ACCEPTED_MESSAGE_TYPE)), attribute(st.text(max_size=20))
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
BODIES = st.one_of(
    st.sampled_from(ORDERS).map(json.dumps),
    st.builds(lambda order, name: json.dumps({**order, "name": name}), st.sampled_from(ORDERS), st.text()),
    st.builds(
        lambda order, extra: json.dumps({**order, **extra}),
        st.sampled_from(ORDERS),
        st.dictionaries(st.text(max_size=8), JSON, max_size=3),
    ),
    JSON.map(json.dumps),
    st.text(ANY_TEXT, max_size=200),
    st.builds(
        lambda order_id, tenant: json.dumps({"order_id": order_id, "tenant": tenant}),
        st.uuids().map(str),
        st.sampled_from(["default", "../.."]),
    ),
    # up to 230,000 bytes: with its attributes and a reason, still within what SQS takes back
    st.builds(
        lambda chunk, size: chunk * (size // len(chunk.encode())),
        st.sampled_from(["a", "é", "[", '{"a":1,', "😀"]),
        st.integers(1, 230_000),
    ),
    st.integers(1, 60_000).map(lambda n: "[" * n + "]" * n),
)


@dataclass
class Message:
    message_id: str
    body: str
    tenant: Attribute | None
    key: Attribute | None
    message_type: Attribute | None

    def attributes(self) -> dict[str, Attribute]:
        named = {"tenant": self.tenant, "idempotency_key": self.key, "message_type": self.message_type}
        return {name: a for name, a in named.items() if a is not None} | {
            PROBE: Attribute("String", self.message_id)
        }

    def record(self, queue_arn: str) -> dict[str, Any]:
        """The message as Lambda's event source mapping hands it to the function."""
        attributes = {}
        for name, a in self.attributes().items():
            if isinstance(a.value, bytes):
                attributes[name] = {
                    "dataType": a.data_type,
                    "binaryValue": base64.b64encode(a.value).decode(),
                }
            else:
                attributes[name] = {"dataType": a.data_type, "stringValue": a.value}
        return {
            "messageId": self.message_id,
            "receiptHandle": f"receipt-{self.message_id}",
            "body": self.body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": attributes,
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1",
        }


MESSAGES = st.builds(Message, st.uuids().map(str), BODIES, TENANTS, KEYS, MESSAGE_TYPES)


def _valid(check: Any, value: Attribute | None) -> bool:
    if value is None:
        return True
    if not isinstance(value.value, str):
        return False
    try:
        check(value.value)
    except ValueError:
        return False
    return True


def _drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while got := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        for message in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        found += got
    return found


def _records(stack: AwsStack) -> dict[str, dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(stack.ref("OrdersTable"))
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return {item["order_id"]: item for item in items}
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(batch=st.lists(MESSAGES, min_size=1, max_size=4, unique_by=lambda m: m.message_id))
def test_submit_any_message_ends_as_an_order_of_a_valid_tenant_or_refused_with_a_reason(
    aws_stack: AwsStack, batch: list[Message]
) -> None:
    before = _records(aws_stack)
    event = {"Records": [m.record(aws_stack.ref("IntakeQueue", "Arn")) for m in batch]}

    result = aws_stack.invoke_raw("SubmitFunction", event)

    assert not result.errored, result.payload
    assert json.loads(result.payload) == {"batchItemFailures": []}
    refused = {
        m["MessageAttributes"][PROBE]["StringValue"]: m
        for m in _drain(aws_stack.ref("IntakeDeadLetterQueue"))
    }
    after = _records(aws_stack)
    expected_new: set[str] = set()
    for message in batch:
        attribute_ok = (
            message.message_type is None
            and _valid(validate_tenant, message.tenant)
            and _valid(valid_idempotency_key, message.key)
        )
        if message.message_id in refused:
            dead = refused[message.message_id]
            reason = dead["MessageAttributes"][REFUSAL_REASON_ATTRIBUTE]["StringValue"]
            assert reason
            assert dead["Body"] == (_sqs_text(message.body) or " ")
            if attribute_ok:  # a valid external message is refused only for reusing a key
                assert reason == KEY_REUSED
                order_id = _order_id(message)
                assert order_id in after
                assert after[order_id]["intake_sha256"] != _sha256(message.body)
            continue
        assert attribute_ok, f"accepted a message it should have refused: {message}"
        order_id = _order_id(message)
        assert order_id in after, f"no order and no refusal for {message}"
        assert after[order_id]["intake_sha256"] == _sha256(message.body)
        if order_id not in before:
            expected_new.add(order_id)
    assert set(after) - set(before) == expected_new  # a refused message wrote nothing
    for order_id, item in after.items():
        validate_tenant(item["tenant"])
        folder = f"{PREFIX}/{item['tenant']}/{order_id}/"
        assert str(uuid.UUID(order_id)) == order_id
        assert posixpath.normpath(folder) + "/" == folder and folder.count("/") == 3
    assert boto3.client("s3").list_objects_v2(Bucket=aws_stack.ref("ResultsBucket")).get("KeyCount", 0) == 0


def _order_id(message: Message) -> str:
    tenant = message.tenant.value if message.tenant is not None else DEFAULT_TENANT
    key = message.key.value if message.key is not None else message.message_id
    assert isinstance(tenant, str) and isinstance(key, str)
    return external_order_id(tenant, key)


def _sha256(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
