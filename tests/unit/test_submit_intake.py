"""SubmitService's intake with in-memory fakes: what it refuses, what becomes an order, when secrets go."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from harness import load_event
from intake_fakes import Rig, message, submitted_phase
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.models.order import ACCEPTED_MESSAGE_TYPE, OrderRecord, Phase
from order_core.models.planet import OrderRequest
from order_core.models.tenancy import validate_tenant
from order_core.observability import logger
from order_core.services.bundles import BundlesSpecSource
from order_core.services.orders import REDACTED, OrderService, new_record, redact, without_credentials
from order_core.services.submit import (
    KEY_REUSED,
    MAX_ORDER_BYTES,
    MessageRefused,
    RetryLater,
    SubmitService,
    external_order_id,
    valid_idempotency_key,
)

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def scenes(name: str = "scenes order") -> dict[str, Any]:
    return dict(load_event("planet/create_scenes_direct.json"), name=name)


def s3_order(name: str = "to my bucket") -> dict[str, Any]:
    delivery = {
        "amazon_s3": {
            "aws_access_key_id": AWS_KEY_ID,
            "aws_secret_access_key": AWS_SECRET,
            "bucket": "my-bucket",
            "aws_region": "us-east-1",
            "path_prefix": "planet",
        }
    }
    return dict(scenes(name), delivery=delivery)


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """What the gateway's logger writes during the test."""
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


# --- tenants ------------------------------------------------------------------------------------------------

HOSTILE_TENANTS = [
    f"default/{uuid.uuid4()}",  # another order's folder
    "../..",
    "a/../../outside",
    "",
    "ünïcode",
    "a" * 64,
    "Default",
    " default",
    "default\n",
    "-leading-dash",
    "x" * 100_000,
]


@pytest.mark.parametrize("tenant", HOSTILE_TENANTS, ids=lambda t: ascii(t[:20]))
def test_accept_external_invalid_tenant_is_refused_to_the_dlq_and_writes_nothing(tenant: str) -> None:
    rig = Rig()
    body = json.dumps(scenes())

    assert rig.process(body, tenant=tenant) is None

    (refused,) = rig.dead_letters.sent
    assert refused["reason"].startswith("invalid tenant: tenant names are 1-63 characters")
    assert refused["body"] == body
    assert refused["attributes"]["tenant"] == ("String", tenant)
    assert rig.orders.writes == [] and rig.workflow.started == [] and rig.planet.created == []


def test_accept_external_binary_tenant_attribute_is_refused() -> None:
    rig = Rig()

    assert rig.process(json.dumps(scenes()), tenant=b"default") is None

    assert rig.dead_letters.sent[0]["reason"] == "the tenant attribute must be a String"
    assert rig.orders.writes == []


def test_accept_external_valid_tenant_becomes_its_order_and_no_tenant_means_default() -> None:
    rig = Rig()

    acme = rig.process(json.dumps(scenes()), tenant="acme-1")
    default = rig.process(json.dumps(scenes()))

    assert acme and default
    assert rig.orders.records[acme].tenant == "acme-1"
    assert rig.orders.records[default].tenant == "default"
    assert all(submitted_phase(rig.orders.records[i]) for i in (acme, default))
    assert rig.dead_letters.sent == []


def test_validate_tenant_is_the_one_rule_for_api_keys_and_sqs() -> None:
    from order_core.models.tenancy import ApiKeyRecord
    from pydantic import ValidationError

    for tenant in HOSTILE_TENANTS:
        with pytest.raises(ValueError):
            validate_tenant(tenant)
        with pytest.raises(ValidationError):
            ApiKeyRecord(key_hash="0" * 64, key_id="pgw_abc", tenant=tenant)


def test_accept_external_invalid_body_with_valid_tenant_is_a_rejected_order_in_that_tenant() -> None:
    rig = Rig()

    order_id = rig.process(json.dumps({"name": "no products"}), tenant="acme")

    assert order_id is not None
    record = rig.orders.records[order_id]
    assert record.rejected and record.tenant == "acme" and record.name == "no products"
    assert any("products" in hint for hint in record.error_hints)
    assert rig.planet.created == [] and rig.dead_letters.sent == []
    assert [w.order_id for w in rig.workflow.started] == [order_id]


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (
            "x" * (MAX_ORDER_BYTES + 1),
            f"Message body is {MAX_ORDER_BYTES + 1} bytes; the limit is {MAX_ORDER_BYTES}",
        ),
        ('{"name": "a\ud800"}', "Message body is not valid Unicode text"),
        ("[" * 5000 + "]" * 5000, "recursion limit"),
        ("not json at all", "Invalid JSON"),
        ("", "Invalid JSON"),
    ],
    ids=["too-large", "lone-surrogate", "deep", "not-json", "empty"],
)
def test_accept_external_unreadable_body_is_a_rejected_order_naming_why(body: str, hint: str) -> None:
    rig = Rig()

    order_id = rig.process(body, tenant="acme")

    assert order_id is not None
    record = rig.orders.records[order_id]
    assert record.rejected and record.name == "(invalid order request)"
    assert any(hint in h for h in record.error_hints), record.error_hints


def test_accept_external_bundle_planet_does_not_offer_is_a_rejected_order_naming_the_field() -> None:
    # Planet unreachable: the checks fall back to the table derived from Planet's bundles spec, as the API's.
    def unreachable() -> Any:
        raise ConnectionError("Planet is unreachable")

    rig = Rig(bundles=BundlesSpecSource(unreachable))
    request = scenes()
    request["products"][0]["product_bundle"] = "analytic"

    order_id = rig.process(json.dumps(request), tenant="acme")

    assert order_id is not None
    record = rig.orders.records[order_id]
    assert record.rejected and rig.planet.created == []
    [hint] = record.error_hints
    assert hint.startswith(
        "products.0.product_bundle: product bundle 'analytic' is not available for item type PSScene"
    )


def test_accept_external_order_too_large_as_stored_is_rejected() -> None:
    # Non-ASCII is stored escaped (6 bytes a character), so a body under the limit can exceed it stored.
    request = dict(scenes(), name="é" * (MAX_ORDER_BYTES // 5))
    rig = Rig()

    order_id = rig.process(json.dumps(request, ensure_ascii=False), tenant="acme")

    assert order_id is not None
    assert "as stored" in rig.orders.records[order_id].error_hints[0]


def test_accept_external_many_problems_keep_at_most_twenty_short_hints() -> None:
    body = json.dumps({**scenes(), **{f"unknown_{i}_{'x' * 400}": 1 for i in range(200)}})
    rig = Rig()

    order_id = rig.process(body, tenant="acme")

    assert order_id is not None
    hints = rig.orders.records[order_id].error_hints
    assert len(hints) == 20 and hints[-1] == "... and 181 more problems"
    assert all(len(h) <= 300 for h in hints)


# --- idempotency keys ---------------------------------------------------------------------------------------


def test_external_order_id_is_uuid5_of_tenant_and_key_as_before() -> None:
    # Orders already queued before an upgrade must keep their ids, or a redelivery would be a second order.
    namespace = uuid.UUID("6f1f4a52-8a0e-4b8e-9d55-2f3c1bb7a9a1")
    for tenant, key in [("default", "order-1"), ("acme", "ключ-7"), ("a", "😀" * 10)]:
        assert external_order_id(tenant, key) == str(uuid.uuid5(namespace, f"{tenant}:{key}"))
    assert uuid.UUID(external_order_id("default", "\ud800")).version == 5  # hashes instead of raising


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "a\nb", "tab\tkey", "\ud800", "\x00"], ids=ascii)
def test_valid_idempotency_key_refuses_blank_long_and_control_characters(key: str) -> None:
    with pytest.raises(ValueError):
        valid_idempotency_key(key)
    rig = Rig()

    assert rig.process(json.dumps(scenes()), idempotency_key=key) is None

    assert rig.dead_letters.sent[0]["reason"].startswith(
        "invalid idempotency_key: idempotency keys are 1 to 255"
    )
    assert rig.orders.writes == []


@pytest.mark.parametrize("key", ["k" * 255, "order-2026-11-30", "ключ 7", "a b"])
def test_valid_idempotency_key_accepts_what_the_api_accepts(key: str) -> None:
    assert valid_idempotency_key(key) == key


def test_same_idempotency_key_same_body_is_one_order_silently() -> None:
    rig = Rig()
    body = json.dumps(scenes())

    first = rig.process(body, idempotency_key="k-1", tenant="acme")
    second = rig.process(body, idempotency_key="k-1", tenant="acme")

    assert first == second == external_order_id("acme", "k-1")
    assert len(rig.planet.created) == 1 and rig.dead_letters.sent == []


def test_same_idempotency_key_other_body_is_refused_with_its_reason() -> None:
    rig = Rig()
    first = rig.process(json.dumps(scenes("first")), idempotency_key="k-1")

    assert rig.process(json.dumps(scenes("second")), idempotency_key="k-1") is None

    (refused,) = rig.dead_letters.sent
    assert refused["reason"] == KEY_REUSED == "idempotency key reused with a different body"
    assert json.loads(refused["body"])["name"] == "second"
    assert first is not None and rig.orders.records[first].name == "first"
    assert len(rig.planet.created) == 1


def test_same_idempotency_key_in_another_tenant_is_another_order() -> None:
    rig = Rig()

    a = rig.process(json.dumps(scenes("a")), idempotency_key="k-1", tenant="a")
    b = rig.process(json.dumps(scenes("b")), idempotency_key="k-1", tenant="b")

    assert a and b and a != b and rig.dead_letters.sent == []


def test_same_idempotency_key_same_body_after_credentials_left_is_still_one_order() -> None:
    # The comparison is against the body as first received, not the stored request (stripped by now).
    rig = Rig()
    body = json.dumps(s3_order())
    order_id = rig.process(body, idempotency_key="k-9")
    assert order_id is not None
    assert AWS_SECRET not in json.dumps(rig.orders.records[order_id].request)

    assert rig.process(body, idempotency_key="k-9") == order_id
    assert rig.dead_letters.sent == []


def test_same_idempotency_key_after_an_invalid_body_refuses_a_corrected_one() -> None:
    rig = Rig()
    rejected = rig.process(json.dumps({"name": "broken"}), idempotency_key="k-3")

    assert rig.process(json.dumps(scenes()), idempotency_key="k-3") is None

    assert rig.dead_letters.sent[0]["reason"] == KEY_REUSED
    assert rejected is not None and rig.orders.records[rejected].rejected


def test_record_without_fingerprint_from_before_the_upgrade_stays_a_silent_duplicate() -> None:
    rig = Rig()
    order_id = external_order_id("default", "old-key")
    rig.orders.records[order_id] = new_record(OrderRequest.model_validate(scenes()), "default", order_id)

    assert rig.process(json.dumps(scenes("other")), idempotency_key="old-key") == order_id
    assert rig.dead_letters.sent == []


# --- other message types ----------------------------------------------------------------------------------


def test_accepted_message_from_the_api_submits_its_order() -> None:
    rig = Rig()
    record = new_record(OrderRequest.model_validate(scenes()), "acme")
    rig.orders.create(record)
    body = json.dumps({"order_id": record.order_id, "tenant": "acme"})

    assert rig.process(body, message_type=ACCEPTED_MESSAGE_TYPE) == record.order_id
    assert submitted_phase(rig.orders.records[record.order_id])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{}", f"not a valid {ACCEPTED_MESSAGE_TYPE} message"),
        ('{"order_id": "", "tenant": "acme"}', f"not a valid {ACCEPTED_MESSAGE_TYPE} message"),
        ('{"order_id": "../x", "tenant": "acme"}', f"not a valid {ACCEPTED_MESSAGE_TYPE} message"),
        (
            json.dumps({"order_id": str(uuid.UUID(int=1)), "tenant": "default/x"}),
            f"not a valid {ACCEPTED_MESSAGE_TYPE} message",
        ),
        (
            json.dumps({"order_id": str(uuid.UUID(int=1)), "tenant": "acme"}),
            f"{ACCEPTED_MESSAGE_TYPE} message for an unknown order",
        ),
    ],
    ids=["empty", "blank-id", "path-id", "bad-tenant", "unknown-order"],
)
def test_accepted_message_forged_or_stale_is_refused(body: str, reason: str) -> None:
    rig = Rig()

    assert rig.process(body, message_type=ACCEPTED_MESSAGE_TYPE) is None

    assert rig.dead_letters.sent[0]["reason"] == reason
    assert rig.orders.writes == [] and rig.workflow.started == []


def test_accepted_message_naming_another_tenant_is_refused_and_leaves_the_order_alone() -> None:
    rig = Rig()
    record = new_record(OrderRequest.model_validate(scenes()), "acme")
    rig.orders.create(record)

    body = json.dumps({"order_id": record.order_id, "tenant": "mallory"})
    assert rig.process(body, message_type=ACCEPTED_MESSAGE_TYPE) is None

    assert "another tenant" in rig.dead_letters.sent[0]["reason"]
    assert rig.orders.records[record.order_id].phase == Phase.ACCEPTED and rig.planet.created == []


def test_unknown_message_type_is_refused() -> None:
    rig = Rig()

    assert rig.process(json.dumps(scenes()), message_type="order") is None

    assert rig.dead_letters.sent[0]["reason"] == "unknown message_type; outside producers send none"
    assert rig.orders.writes == []


# --- how a refusal shows ----------------------------------------------------------------------------------


def test_refusal_is_logged_with_its_reason_and_counted_but_never_logs_the_body(
    log: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = Rig()

    rig.process(json.dumps(s3_order()), tenant="default/../x", idempotency_key="k-1")

    (line,) = [json.loads(text) for text in log.getvalue().splitlines()]
    assert line["message"] == "intake message refused"
    assert line["reason"].startswith("invalid tenant")
    assert line["refusal_code"] == "invalid_tenant"
    assert line["message_attributes"] == {"tenant": "'default/../x'", "idempotency_key": "'k-1'"}
    assert AWS_SECRET not in log.getvalue() and AWS_KEY_ID not in log.getvalue()
    (metric,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if "_aws" in text]
    assert metric["IntakeMessagesRefused"] == [1.0] and metric["reason"] == "invalid_tenant"


def test_refusal_without_a_dead_letter_queue_leaves_the_message_to_return() -> None:
    rig = Rig()
    service = SubmitService(rig.orders, rig.planet, rig.workflow)

    with pytest.raises(MessageRefused):
        service.process(message(json.dumps(scenes()), tenant="../.."))
    assert rig.orders.writes == []


# --- credentials --------------------------------------------------------------------------------------------

DELIVERIES: dict[str, dict[str, Any]] = {
    "amazon_s3": {"aws_access_key_id": "id", "aws_secret_access_key": "s", "bucket": "b", "aws_region": "r"},
    "azure_blob_storage": {"account": "a", "container": "c", "sas_token": "s"},
    "google_cloud_storage": {"bucket": "b", "credentials": "eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0="},
    "oracle_cloud_storage": {
        "customer_access_key_id": "id",
        "customer_secret_key": "s",
        "bucket": "b",
        "region": "r",
        "namespace": "n",
    },
    "s3_compatible": {
        "endpoint": "e",
        "bucket": "b",
        "region": "r",
        "access_key_id": "id",
        "secret_access_key": "s",
        "use_path_style": True,
    },
}
CREDENTIAL_FIELDS = {
    "aws_access_key_id",
    "aws_secret_access_key",
    "sas_token",
    "credentials",
    "customer_access_key_id",
    "customer_secret_key",
    "access_key_id",
    "secret_access_key",
}


@pytest.mark.parametrize("destination", sorted(DELIVERIES))
def test_redact_hides_every_delivery_credential_key_ids_included(destination: str) -> None:
    request = dict(scenes(), delivery={destination: DELIVERIES[destination]})
    OrderRequest.model_validate(request)  # a request Planet's schema accepts

    shown = redact(request)[("delivery")][destination]

    for field, value in DELIVERIES[destination].items():
        assert shown[field] == (REDACTED if field in CREDENTIAL_FIELDS else value)


def test_redact_hides_service_account_fields_nested_anywhere() -> None:
    value = {"a": [{"private_key": "-----BEGIN", "client_email": "x@y"}], "account_key": "k"}

    assert redact(value) == {"a": [{"private_key": REDACTED, "client_email": "x@y"}], "account_key": REDACTED}


def test_without_credentials_keeps_the_rest_and_is_none_when_there_are_none() -> None:
    request = s3_order()

    stripped = without_credentials(request)

    assert stripped is not None
    assert stripped["delivery"]["amazon_s3"] == {
        "aws_access_key_id": REDACTED,
        "aws_secret_access_key": REDACTED,
        "bucket": "my-bucket",
        "aws_region": "us-east-1",
        "path_prefix": "planet",
    }
    assert {k: v for k, v in stripped.items() if k != "delivery"} == {
        k: v for k, v in request.items() if k != "delivery"
    }
    assert without_credentials(scenes()) is None
    assert without_credentials(stripped) is None


def _stored(rig: Rig, order_id: str) -> str:
    return json.dumps(rig.orders.records[order_id].request)


def test_submit_forgets_credentials_in_the_same_write_that_records_planets_order() -> None:
    rig = Rig()

    order_id = rig.process(json.dumps(s3_order()))

    assert order_id is not None
    (submitted,) = [w for w in rig.orders.writes if w.get("phase") == Phase.SUBMITTED]
    assert submitted["request"]["delivery"]["amazon_s3"]["aws_secret_access_key"] == REDACTED
    assert AWS_SECRET not in _stored(rig, order_id) and AWS_KEY_ID not in _stored(rig, order_id)
    assert rig.orders.records[order_id].request["delivery"]["amazon_s3"]["bucket"] == "my-bucket"
    (sent,) = rig.planet.created
    assert sent["delivery"]["amazon_s3"]["aws_secret_access_key"] == AWS_SECRET  # Planet got them


def test_submit_keeps_credentials_while_an_ambiguous_post_must_be_retried() -> None:
    rig = Rig(unavailable=1)
    body = json.dumps(s3_order())

    with pytest.raises(RetryLater):
        rig.process(body, message_id="m-1")
    order_id = external_order_id("default", "m-1")
    assert AWS_SECRET in _stored(rig, order_id)  # Planet may not have it: the retry needs them

    assert rig.process(body, message_id="m-1") == order_id
    assert rig.planet.created[0]["delivery"]["amazon_s3"]["aws_secret_access_key"] == AWS_SECRET
    assert AWS_SECRET not in _stored(rig, order_id)


def test_submit_rate_limited_on_every_attempt_ends_failed_with_a_hint_after_the_attempts() -> None:
    rig = Rig(rate_limited=100)
    deferred = 0
    for _ in range(10):
        try:
            rig.process(json.dumps(scenes()), message_id="m-429")
        except RetryLater:
            deferred += 1
    record = rig.orders.records[external_order_id("default", "m-429")]

    assert deferred == 5 and rig.planet.create_calls == 6  # SUBMIT_MAX_ATTEMPTS, then no more POSTs
    assert record.rejected and rig.planet.created == []
    assert record.error_hints[0].startswith("Planet kept rate limiting order creation after 6 attempts")
    assert [w.order_id for w in rig.workflow.started] == [record.order_id]  # it goes on to its one event


def test_submit_rate_limited_a_few_times_still_submits_once() -> None:
    rig = Rig(rate_limited=3)
    for _ in range(3):
        with pytest.raises(RetryLater):
            rig.process(json.dumps(scenes()), message_id="m-429")

    order_id = rig.process(json.dumps(scenes()), message_id="m-429")

    assert len(rig.planet.created) == 1 and not rig.orders.records[str(order_id)].rejected


def test_submit_deferred_by_the_fleet_pace_more_often_than_the_attempts_still_submits_once() -> None:
    # A deferral sends nothing: it is a wait for a slot, never one of the order's attempts at Planet.
    rig = Rig(deferred=10)
    waits = []
    for _ in range(10):
        with pytest.raises(RetryLater) as deferred:
            rig.process(json.dumps(scenes()), message_id="m-slot")
        waits.append(deferred.value.seconds)

    order_id = rig.process(json.dumps(scenes()), message_id="m-slot")

    record = rig.orders.records[str(order_id)]
    assert len(rig.planet.created) == 1 and not record.rejected
    assert record.submit_attempts == 1  # only the POST that reached Planet counts
    assert min(waits) >= 8  # the time to the next slot, rounded up: never sooner than the pace allows


def test_submit_reconciliation_failing_on_every_attempt_ends_failed_naming_the_marker() -> None:
    # The first POST is ambiguous (503): every later attempt must first ask Planet for the order's marker.
    rig = Rig(unavailable=1, list_unavailable=100)
    for _ in range(10):
        with contextlib.suppress(RetryLater):
            rig.process(json.dumps(scenes()), message_id="m-list")
    order_id = external_order_id("default", "m-list")
    record = rig.orders.records[order_id]

    assert rig.planet.create_calls == 1  # never posted again without knowing
    assert record.rejected
    assert f"[gw:{order_id}]" in record.error_hints[0] and "6 attempts" in record.error_hints[0]


def test_submit_forgets_credentials_of_an_order_that_never_reaches_planet() -> None:
    rig = Rig(unavailable=100)
    body = json.dumps(s3_order())
    for _ in range(6):  # SUBMIT_MAX_ATTEMPTS: then it is rejected
        with contextlib.suppress(RetryLater):
            rig.process(body, message_id="m-2")
    record = rig.orders.records[external_order_id("default", "m-2")]

    assert record.rejected and AWS_SECRET not in json.dumps(record.request)


def test_cancel_before_submission_forgets_credentials_and_the_order_is_never_posted() -> None:
    orders = InMemoryOrderStore()
    record = new_record(OrderRequest.model_validate(s3_order()), "acme")
    orders.create(record)
    api = OrderService(orders, queue=None)

    api.cancel(record.order_id, "acme")

    assert AWS_SECRET not in json.dumps(orders.records[record.order_id].request)


def test_redelivery_of_an_order_submitted_before_the_upgrade_forgets_its_credentials() -> None:
    rig = Rig()
    record = new_record(OrderRequest.model_validate(s3_order()), "acme")
    rig.orders.records[record.order_id] = record.model_copy(
        update={"phase": Phase.SUBMITTED, "upstream_order_id": str(uuid.uuid4())}
    )
    body = json.dumps({"order_id": record.order_id, "tenant": "acme"})

    rig.process(body, message_type=ACCEPTED_MESSAGE_TYPE)

    assert AWS_SECRET not in _stored(rig, record.order_id)
    assert rig.planet.created == []


def test_fingerprint_is_sha256_of_the_body_as_sent() -> None:
    rig = Rig()
    body = json.dumps(scenes())

    order_id = rig.process(body)

    assert order_id is not None
    record: OrderRecord = rig.orders.records[order_id]
    assert record.intake_sha256 == hashlib.sha256(body.encode()).hexdigest()
