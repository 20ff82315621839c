"""SubmitFunction under moto: refused messages reach the DLQ at once with their reason and write nothing;
delivery credentials leave DynamoDB once Planet has the order."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import boto3
import pytest
from harness import AwsStack, api_event, intake_event, load_event
from order_core.services.submit import KEY_REUSED, external_order_id

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def scenes(name: str = "scenes order, direct download") -> dict[str, Any]:
    return dict(load_event("planet/create_scenes_direct.json"), name=name)


def s3_order() -> dict[str, Any]:
    delivery = {
        "amazon_s3": {
            "aws_access_key_id": AWS_KEY_ID,
            "aws_secret_access_key": AWS_SECRET,
            "bucket": "their-bucket",
            "aws_region": "us-east-1",
        }
    }
    return dict(scenes("to their bucket"), delivery=delivery)


def send(stack: AwsStack, body: str, **attributes: str) -> None:
    boto3.client("sqs").send_message(
        QueueUrl=stack.ref("IntakeQueue"),
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def dead_letters(stack: AwsStack) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=stack.ref("IntakeDeadLetterQueue"), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        for message in got:
            sqs.delete_message(
                QueueUrl=stack.ref("IntakeDeadLetterQueue"), ReceiptHandle=message["ReceiptHandle"]
            )
        messages += got


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("StringValue", v.get("BinaryValue")) for k, v in message["MessageAttributes"].items()}


def stored_items(stack: AwsStack) -> list[dict[str, Any]]:
    return boto3.resource("dynamodb").Table(stack.ref("OrdersTable")).scan()["Items"]


def assert_nothing_written(stack: AwsStack) -> None:
    assert stored_items(stack) == []
    sfn = boto3.client("stepfunctions")
    assert sfn.list_executions(stateMachineArn=stack.ref("OrderWorkflow"))["executions"] == []
    assert boto3.client("s3").list_objects_v2(Bucket=stack.ref("ResultsBucket")).get("KeyCount", 0) == 0
    assert stack.planet_orders() == []
    assert stack.completion_events() == []


def test_local_submit_function_is_configured_with_the_dead_letter_queue(aws_stack: AwsStack) -> None:
    environment = aws_stack.resources.functions["SubmitFunction"].environment

    assert environment["INTAKE_DEAD_LETTER_QUEUE_URL"] == aws_stack.ref("IntakeDeadLetterQueue")


@pytest.mark.parametrize(
    "tenant",
    [f"default/{uuid.uuid4()}", "../..", "ünïcode", "a" * 64, "x" * 5000, "Default"],
    ids=["another-orders-folder", "dot-dot", "unicode", "64-chars", "very-long", "upper-case"],
)
def test_submit_invalid_tenant_goes_to_the_dlq_at_once_with_its_reason(
    aws_stack: AwsStack, tenant: str
) -> None:
    body = json.dumps(scenes())
    send(aws_stack, body, tenant=tenant, idempotency_key="k-1")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert refused["Body"] == body
    attributes = attributes_of(refused)
    assert attributes["tenant"] == tenant and attributes["idempotency_key"] == "k-1"
    assert attributes["refusal_reason"].startswith("invalid tenant: tenant names are 1-63 characters")
    assert intake_event(aws_stack)["Records"] == []  # deleted from the intake queue: it does not loop
    assert_nothing_written(aws_stack)


def test_submit_empty_or_binary_tenant_from_a_hand_made_event_is_refused(aws_stack: AwsStack) -> None:
    # SQS itself refuses empty attribute values; a hand-made event can still carry one.
    record = load_event("sqs_intake_external.json")["Records"][0]
    empty = dict(record, messageId=str(uuid.uuid4()))
    empty["messageAttributes"] = {"tenant": {"dataType": "String", "stringValue": ""}}
    binary = dict(record, messageId=str(uuid.uuid4()))
    binary["messageAttributes"] = {"tenant": {"dataType": "Binary", "binaryValue": "ZGVmYXVsdA=="}}

    assert aws_stack.invoke("SubmitFunction", {"Records": [empty, binary]}) == {"batchItemFailures": []}

    reasons = sorted(attributes_of(m)["refusal_reason"] for m in dead_letters(aws_stack))
    assert reasons[0].startswith("invalid tenant") and "attributes not kept: tenant" in reasons[0]
    assert reasons[1] == "the tenant attribute must be a String"
    assert_nothing_written(aws_stack)


def test_submit_invalid_idempotency_key_is_refused(aws_stack: AwsStack) -> None:
    send(aws_stack, json.dumps(scenes()), idempotency_key="k" * 256)

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert attributes_of(refused)["refusal_reason"].startswith("invalid idempotency_key")
    assert_nothing_written(aws_stack)


def test_submit_reused_idempotency_key_with_other_body_refuses_the_second(aws_stack: AwsStack) -> None:
    send(aws_stack, json.dumps(scenes("first")), idempotency_key="k-7", tenant="acme")
    aws_stack.invoke("SubmitFunction", intake_event(aws_stack))
    second = json.dumps(scenes("second"))
    send(aws_stack, second, idempotency_key="k-7", tenant="acme")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert refused["Body"] == second
    assert attributes_of(refused)["refusal_reason"] == KEY_REUSED
    (planet_order,) = aws_stack.planet_orders()
    assert planet_order["name"].startswith("first ")
    assert aws_stack.record(external_order_id("acme", "k-7")).name == "first"


def test_submit_same_key_same_body_twice_is_one_order_and_nothing_refused(aws_stack: AwsStack) -> None:
    body = json.dumps(scenes())
    send(aws_stack, body, idempotency_key="k-8")
    send(aws_stack, body, idempotency_key="k-8")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    assert dead_letters(aws_stack) == []
    assert len(aws_stack.planet_orders()) == 1 and len(stored_items(aws_stack)) == 1


def test_submit_batch_with_a_refused_and_a_valid_message_handles_each(aws_stack: AwsStack) -> None:
    send(aws_stack, json.dumps(scenes("hostile")), tenant="../..")
    send(aws_stack, json.dumps(scenes("fine")), tenant="acme", idempotency_key="fine")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert json.loads(refused["Body"])["name"] == "hostile"
    record = aws_stack.record(external_order_id("acme", "fine"))
    assert record.tenant == "acme" and record.upstream_order_id is not None


def test_submit_invalid_body_with_valid_tenant_is_still_a_failed_order_in_its_tenant(
    aws_stack: AwsStack,
) -> None:
    send(aws_stack, "{not json", tenant="acme", idempotency_key="bad-1")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    record = aws_stack.record(external_order_id("acme", "bad-1"))
    assert record.rejected and record.tenant == "acme"
    assert dead_letters(aws_stack) == []


def test_submit_forged_accepted_message_is_refused(aws_stack: AwsStack) -> None:
    forged = json.dumps({"order_id": str(uuid.uuid4()), "tenant": "default"})
    send(aws_stack, forged, message_type="gateway.order.accepted")

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert attributes_of(refused)["refusal_reason"] == "gateway.order.accepted message for an unknown order"
    assert_nothing_written(aws_stack)


def test_submit_refused_message_with_ten_attributes_keeps_nine_and_its_reason(aws_stack: AwsStack) -> None:
    extra = {f"extra_{i}": str(i) for i in range(9)}
    send(aws_stack, json.dumps(scenes()), tenant="../..", **extra)

    assert aws_stack.invoke("SubmitFunction", intake_event(aws_stack)) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    attributes = attributes_of(refused)
    assert len(attributes) == 10 and attributes["tenant"] == "../.."
    assert attributes["refusal_reason"].endswith("(attributes not kept: extra_8)")


def test_submit_refusal_that_cannot_reach_the_dlq_stays_on_the_intake_queue(
    aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from order_core import wiring

    monkeypatch.setenv("INTAKE_DEAD_LETTER_QUEUE_URL", aws_stack.ref("IntakeDeadLetterQueue") + "-gone")
    wiring.reset()
    send(aws_stack, json.dumps(scenes()), tenant="../..")
    event = intake_event(aws_stack)

    result = aws_stack.invoke("SubmitFunction", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert_nothing_written(aws_stack)


def test_submit_refusal_is_logged_and_counted_without_the_bodys_secrets(
    aws_stack: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from order_core.observability import logger

    send(aws_stack, json.dumps(s3_order()), tenant=f"default/{uuid.uuid4()}")
    log = io.StringIO()
    previous = logger.registered_handler.setStream(log)
    try:
        aws_stack.invoke("SubmitFunction", intake_event(aws_stack))
    finally:
        logger.registered_handler.setStream(previous)

    out = capsys.readouterr().out  # EMF metrics are printed to stdout
    lines = [json.loads(line) for line in (log.getvalue() + out).splitlines() if line.startswith("{")]
    (refusal,) = [line for line in lines if line.get("message") == "intake message refused"]
    assert refusal["reason"].startswith("invalid tenant") and refusal["refusal_code"] == "invalid_tenant"
    assert refusal["function_name"] == "SubmitFunction"
    (metric,) = [line for line in lines if "IntakeMessagesRefused" in line]
    assert metric["reason"] == "invalid_tenant"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PlanetOrdersGateway"
    everything = log.getvalue() + out
    assert AWS_SECRET not in everything and AWS_KEY_ID not in everything


# --- credentials ------------------------------------------------------------------------------------------


def test_submitted_order_keeps_no_delivery_credentials_in_dynamodb(aws_stack: AwsStack) -> None:
    send(aws_stack, json.dumps(s3_order()), tenant="acme", idempotency_key="creds-1")

    aws_stack.invoke("SubmitFunction", intake_event(aws_stack))

    (item,) = stored_items(aws_stack)
    assert item["phase"] == "submitted"
    text = json.dumps({k: v for k, v in item.items() if isinstance(v, str)})
    assert AWS_SECRET not in text and AWS_KEY_ID not in text
    stored = json.loads(item["request_json"])["delivery"]["amazon_s3"]
    assert stored == {
        "aws_access_key_id": "<redacted>",
        "aws_secret_access_key": "<redacted>",
        "bucket": "their-bucket",
        "aws_region": "us-east-1",
    }
    (upstream,) = aws_stack.planet_orders()
    assert upstream["request"]["delivery"]["amazon_s3"]["aws_secret_access_key"] == AWS_SECRET


def api(stack: AwsStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    event = api_event(method, path, body=json.dumps(body) if body is not None else None)
    event["requestContext"]["authorizer"] = {"principalId": "default", "tenant": "default"}
    response = stack.invoke("ApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


def test_api_order_credentials_leave_dynamodb_once_submitted_and_key_ids_never_show(
    aws_stack: AwsStack,
) -> None:
    status, created = api(aws_stack, "POST", "/compute/ops/orders/v2", s3_order())
    assert status == 202
    (before,) = stored_items(aws_stack)
    assert AWS_SECRET in before["request_json"]  # Planet does not have it yet: the POST needs them

    aws_stack.invoke("SubmitFunction", intake_event(aws_stack))
    _, shown = api(aws_stack, "GET", f"/compute/ops/orders/v2/{created['id']}")

    (after,) = stored_items(aws_stack)
    assert AWS_SECRET not in after["request_json"] and AWS_KEY_ID not in after["request_json"]
    for view in (created, shown):
        assert view["delivery"]["amazon_s3"]["aws_access_key_id"] == "<redacted>"
        assert view["delivery"]["amazon_s3"]["bucket"] == "their-bucket"
        assert AWS_KEY_ID not in json.dumps(view) and AWS_SECRET not in json.dumps(view)
    (upstream,) = aws_stack.planet_orders()
    assert upstream["request"]["delivery"]["amazon_s3"]["aws_access_key_id"] == AWS_KEY_ID


def test_submit_sample_event_with_a_tenant_naming_another_orders_folder_is_refused(
    aws_stack: AwsStack,
) -> None:
    event = load_event("sqs_intake_hostile_tenant.json")

    assert aws_stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}

    (refused,) = dead_letters(aws_stack)
    assert attributes_of(refused)["tenant"].startswith("default/")
    assert attributes_of(refused)["refusal_reason"].startswith("invalid tenant")
    assert_nothing_written(aws_stack)
