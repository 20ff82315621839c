"""Tenants' webhooks under moto: Finalize queues the call on the template's WebhookQueue, NotifyFunction
makes it, a failing receiver is retried and, after the last receive, the call is in the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from harness import AwsStack, api_event, load_event
from webhook_receiver import Receiver, running_receiver

TENANT = "default"  # the tenant of the sample API event


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


@pytest.fixture
def stack(aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    from order_core import wiring

    monkeypatch.setenv("WEBHOOK_BASE_URL", "https://gateway.example.com/v1/compute/ops")
    wiring.reset()
    return aws_stack


def ended_order_with_webhook(stack: AwsStack, url: str | None, *, email: bool = False) -> str:
    """An order with a per-order webhook (and email), ended by Finalize (it never reached Planet: failed)."""
    from order_core import wiring

    notifications: dict[str, Any] = {"email": email}
    if url is not None:
        notifications["webhook"] = {"url": url, "per_order": True}
    body = load_event("planet/create_scenes_direct.json") | {"notifications": notifications}
    response = stack.invoke("ApiFunction", api_event("POST", "/compute/ops/orders/v2", body=json.dumps(body)))
    assert response["statusCode"] == 202, response
    order_id = str(json.loads(response["body"])["id"])
    wiring.finalize_service().finalize(order_id, upstream_state=None)
    return order_id


def receive(stack: AwsStack, logical_id: str = "WebhookQueue") -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(
        QueueUrl=stack.ref(logical_id),
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(got.get("Messages", []))


def notify(stack: AwsStack, messages: list[dict[str, Any]]) -> dict[str, Any]:
    from gateway_local.esm import lambda_sqs_record

    arn = stack.ref("WebhookQueue", "Arn")
    event = {"Records": [lambda_sqs_record(m, arn, "us-east-1") for m in messages]}
    result: dict[str, Any] = stack.invoke("NotifyFunction", event)
    return result


def set_secret(tenant: str) -> str:
    from order_core import wiring
    from order_core.services.auth import rotate_webhook_secret

    return rotate_webhook_secret(tenant, wiring.webhook_secrets())


def test_notify_delivers_one_signed_call_with_our_order_id(stack: AwsStack, receiver: Receiver) -> None:
    from order_core.services.notify import verify_signature

    secret = set_secret(TENANT)
    order_id = ended_order_with_webhook(stack, receiver.url)

    assert notify(stack, receive(stack)) == {"batchItemFailures": []}

    (call,) = receiver.calls
    assert json.loads(call["body"])["id"] == order_id
    assert verify_signature(secret, call["body"], call["headers"]["X-Gateway-Signature"])
    assert receive(stack) == []  # delivered: deleted


def test_notify_failing_receiver_is_retried_then_dead_lettered_after_the_last_receive(
    stack: AwsStack, receiver: Receiver
) -> None:
    from order_core.services.notify import MAX_RECEIVES, retry_delays

    set_secret(TENANT)
    ended_order_with_webhook(stack, receiver.url)
    receiver.statuses = [503] * (MAX_RECEIVES + 1)
    sqs = boto3.client("sqs")

    for attempt in range(1, MAX_RECEIVES + 1):
        (message,) = receive(stack)
        assert int(message["Attributes"]["ApproximateReceiveCount"]) == attempt
        result = notify(stack, [message])
        assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        if attempt == 1:  # the handler set the backoff's wait: the message is not visible now
            assert receive(stack) == [] and retry_delays()[0] == 60
        sqs.change_message_visibility(  # the wait has passed
            QueueUrl=stack.ref("WebhookQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    assert receive(stack) == []  # past maxReceiveCount: SQS moved it
    (dead,) = receive(stack, "WebhookDeadLetterQueue")
    assert json.loads(dead["Body"])["kind"] == "order"
    assert len(receiver.calls) == MAX_RECEIVES


def test_notify_target_resolving_to_a_private_address_is_refused_and_dead_lettered_at_once(
    stack: AwsStack,
) -> None:
    set_secret(TENANT)
    ended_order_with_webhook(stack, "https://10.20.30.40/hook")

    assert notify(stack, receive(stack)) == {"batchItemFailures": []}

    (dead,) = receive(stack, "WebhookDeadLetterQueue")
    assert "private address" in dead["MessageAttributes"]["refusal_reason"]["StringValue"]
    assert receive(stack) == []


def test_webhook_secret_is_not_listed_as_an_api_key(stack: AwsStack) -> None:
    from order_core import wiring

    set_secret(TENANT)
    key, _record = wiring.api_key_service().create(TENANT, "pipeline")

    assert [r.tenant for r in wiring.api_key_service().all_keys()] == [TENANT]
    assert key.startswith("pgw_")


def test_notify_email_goes_through_ses_to_the_tenants_address(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from order_core import wiring
    from order_core.services.auth import set_tenant_email

    ses = boto3.client("ses")
    ses.verify_email_identity(EmailAddress="orders@gateway.example.com")
    monkeypatch.setenv("NOTIFICATION_EMAIL_SENDER", "orders@gateway.example.com")
    wiring.reset()
    set_tenant_email(TENANT, "ops@tenant.example.com", wiring.webhook_secrets())
    ended_order_with_webhook(stack, None, email=True)

    messages = receive(stack)
    assert [json.loads(m["Body"])["kind"] for m in messages] == ["email"]
    assert notify(stack, messages) == {"batchItemFailures": []}

    assert ses.get_send_quota()["SentLast24Hours"] == 1
    from moto.ses.models import ses_backends  # what moto's SES "sent": who to, what

    (sent,) = ses_backends["123456789012"]["us-east-1"].sent_messages
    assert sent.destinations["ToAddresses"] == ["ops@tenant.example.com"]
    assert sent.source == "orders@gateway.example.com" and "failed" in sent.subject
