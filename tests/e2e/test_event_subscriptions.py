"""Filtered subscriptions to the completion topic, set up as README.md shows, receive exactly their events.

Two SQS queues subscribe with filter policies on the message attributes: one tenant's `success` events, and
`failed` events of two tenants. Orders of both tenants end `success` and `failed` (the fake Planet fails an
item whose id contains `fail`); each queue must receive exactly its orders' events, each valid against the
published schema, and an operator's replay reaches the subscriber marked `replay=true`.

Tenants are new for each run, so orders other e2e tests run on the same stack never match these filters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from gateway_local.event_schema import message_schema
from gateway_local.readiness import RunningStack
from jsonschema import Draft202012Validator
from stack_process import new_key

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"success", "partial", "failed", "cancelled"}
GOOD_ITEM = "20220304_093300_37_2430"
FAILING_ITEM = "20220304_fail_1"


def _subscribe(stack: RunningStack, name: str, filter_policy: dict[str, Any]) -> str:
    """An SQS queue subscribed to the completion topic with ``filter_policy``, as README.md shows."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.outputs["resources"]["CompletionTopic"]["Ref"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(filter_policy)},
    )
    return str(url)


def _create(stack: RunningStack, key: str, name: str, item_id: str) -> str:
    request = {
        "name": name,
        "source_type": "scenes",
        "products": [{"item_ids": [item_id], "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
    }
    response = requests.post(
        f"{stack.api_url}/orders/v2", json=request, headers={"Authorization": f"api-key {key}"}, timeout=30
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _wait_terminal(stack: RunningStack, key: str, order_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(
            f"{stack.api_url}/orders/v2/{order_id}", headers={"Authorization": f"api-key {key}"}, timeout=30
        )
        state = str(response.json()["state"])
        if state in TERMINAL:
            return state
        time.sleep(0.5)
    raise AssertionError(f"order {order_id} not terminal after {timeout} s")


def _drain(stack: RunningStack, url: str) -> list[dict[str, Any]]:
    """Every SNS envelope on the queue, read until it stays empty (deleted as read)."""
    sqs = stack.client("sqs")
    envelopes: list[dict[str, Any]] = []
    empty_reads = 0
    while empty_reads < 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        empty_reads = 0 if got else empty_reads + 1
        for message in got:
            envelopes.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return envelopes


def _attributes(envelope: dict[str, Any]) -> dict[str, str]:
    return {name: value["Value"] for name, value in envelope.get("MessageAttributes", {}).items()}


@pytest.fixture(scope="module")
def tenants(local_stack: RunningStack) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    return {name: new_key(local_stack, name) for name in (f"acme-{run}", f"globex-{run}")}


def test_filtered_subscriptions_receive_exactly_their_events_and_replays(
    local_stack: RunningStack, tenants: dict[str, str]
) -> None:
    acme, globex = tenants
    acme_success = _subscribe(local_stack, f"{acme}-success", {"tenant": [acme], "state": ["success"]})
    failed = _subscribe(local_stack, f"{acme}-failed", {"tenant": [acme, globex], "state": ["failed"]})

    orders = {
        (tenant, expected): _create(local_stack, key, f"{expected} order of {tenant}", item)
        for tenant, key in tenants.items()
        for expected, item in (("success", GOOD_ITEM), ("failed", FAILING_ITEM))
    }
    for (tenant, expected), order_id in orders.items():
        assert _wait_terminal(local_stack, tenants[tenant], order_id) == expected

    received = {"acme success": _drain(local_stack, acme_success), "failed": _drain(local_stack, failed)}

    def order_ids(name: str) -> list[str]:
        return sorted(json.loads(envelope["Message"])["order_id"] for envelope in received[name])

    assert order_ids("acme success") == [orders[(acme, "success")]]
    assert order_ids("failed") == sorted([orders[(acme, "failed")], orders[(globex, "failed")]])
    validator = Draft202012Validator(message_schema())
    for envelope in [*received["acme success"], *received["failed"]]:
        body = json.loads(envelope["Message"])
        assert list(validator.iter_errors(body)) == []
        assert _attributes(envelope) == {
            "state": body["state"],
            "tenant": body["tenant"],
            "source_type": "scenes",
            "event_id": body["event_id"],
            "schema_version": "1",
        }

    # An operator replays acme's success event: its subscriber gets it again, marked, with the same id.
    replayed = subprocess.run(
        [sys.executable, "-m", "gateway_local", "events", "replay", orders[(acme, "success")]],
        env={**os.environ, "LOCAL_STACK_STATE_DIR": str(local_stack.state_dir)},
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    [again] = _drain(local_stack, acme_success)
    [original] = received["acme success"]
    assert json.loads(again["Message"]) == json.loads(original["Message"])
    assert _attributes(again) == {**_attributes(original), "replay": "true"}
    assert _drain(local_stack, failed) == []
