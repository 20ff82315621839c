"""The real statemachine/order_workflow.asl.json executed by moto, with the real handlers in-process.

Wait states are recorded instead of slept, so the backoff the workflow actually used can be asserted.
"""

from __future__ import annotations

import json
import time
import types
from datetime import timedelta
from typing import Any

import boto3
import pytest
import requests
from harness import AwsStack, intake_event, load_event
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from order_core import wiring
from order_core.models.order import utcnow
from order_core.services.backoff import BackoffPolicy

pytestmark = pytest.mark.execute_workflows


@pytest.fixture
def workflow(aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    def record_wait(_self: Any, env: Any, wait_seconds: float) -> None:
        aws_stack.waits.append(wait_seconds)
        time.sleep(0.05)  # let the fake Planet's timeline move on without hammering it

    monkeypatch.setattr(wait_function.WaitFunction, "_wait_interval", record_wait)
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=lambda _seconds: None))
    return aws_stack


def planet_request(**changes: Any) -> dict[str, Any]:
    request = load_event("planet/create_scenes_direct.json")
    return request | changes


def submit(stack: AwsStack, request: dict[str, Any]) -> str:
    """Send an order as an outside producer would (SQS) and run the SubmitFunction on it."""
    sqs = boto3.client("sqs")
    url = stack.ref("IntakeQueue")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(request))
    event = intake_event(stack)
    assert stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}
    (execution,) = boto3.client("stepfunctions").list_executions(stateMachineArn=stack.ref("OrderWorkflow"))[
        "executions"
    ]
    return str(execution["name"])


def run_to_end(stack: AwsStack, order_id: str, timeout: float = 60) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    arn = stack.ref("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "workflow did not finish"
        time.sleep(0.05)
    return described


def finished(stack: AwsStack, order_id: str) -> tuple[str, dict[str, Any]]:
    """Run the order's workflow to its end; return the recorded state and the one completion event."""
    execution = run_to_end(stack, order_id)
    if execution["status"] != "SUCCEEDED":
        history = boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])
        raise AssertionError(json.dumps(history["events"][-3:], default=str)[:3000])
    events = stack.completion_events()
    assert len(events) == 1, events
    record = stack.record(order_id)
    assert events[0]["message"]["state"] == record.state.value
    return record.state.value, events[0]["message"]


def landed_keys(stack: AwsStack, order_id: str) -> set[str]:
    listed = boto3.client("s3").list_objects_v2(
        Bucket=stack.ref("ResultsBucket"), Prefix=f"orders/default/{order_id}/"
    )
    return {o["Key"].split(f"{order_id}/", 1)[1] for o in listed.get("Contents", [])}


def upstream_gets(stack: AwsStack, order_id: str) -> list[dict[str, Any]]:
    """The fake Planet's log of GET /orders/v2/{id} of this order (landing reads the order once more)."""
    upstream_id = stack.record(order_id).upstream_order_id
    logged = requests.get(f"{stack.planet.url}/_fake/requests", timeout=5).json()["requests"]
    return [r for r in logged if r["op"] == "get" and r["path"].endswith(f"/orders/v2/{upstream_id}")]


def test_workflow_success_waits_for_a_change_polls_once_and_lands_every_file(workflow: AwsStack) -> None:
    order_id = submit(workflow, planet_request())

    state, event = finished(workflow, order_id)

    assert state == "success"
    # No GET right after the create; the wait timed out (nobody woke it here), then one GET saw success
    # (and landing read the order's links once).
    assert workflow.waits == []
    assert len(upstream_gets(workflow, order_id)) == 2
    keys = landed_keys(workflow, order_id)
    stac = {key for key in keys if key.startswith("stac/")}
    assert {"manifest.json", "delivery.json", "stac/catalog.json"} <= keys
    assert event["files"] == len(keys - stac) - 2
    assert event["delivery"]["key"].endswith(f"{order_id}/delivery.json")


def test_workflow_transient_poll_faults_retry_after_the_orders_backoff(workflow: AwsStack) -> None:
    workflow.planet_fault(op="get", kind="status", status=503, times=2)
    order_id = submit(workflow, planet_request())

    state, _event = finished(workflow, order_id)

    assert state == "success"
    policy = BackoffPolicy(first_wait_seconds=2, max_wait_seconds=8)
    assert workflow.waits == policy.sequence(order_id, 2)
    assert len(upstream_gets(workflow, order_id)) == 3 + 1


def test_workflow_woken_order_polls_before_its_wait_times_out(
    workflow: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCH_SECONDS", "600")
    wiring.reset()
    order_id = submit(workflow, planet_request())
    deadline = time.monotonic() + 30
    while workflow.record(order_id).wake_token is None:
        assert time.monotonic() < deadline, "the workflow never stored its wait"
        time.sleep(0.05)
    time.sleep(1)  # the fake Planet's order ends after 0.4 s: a wake now finds it done

    outcome = wiring.wake_service().wake(order_id, by="test")

    assert outcome == "woken"
    state, _event = finished(workflow, order_id)
    assert state == "success"
    assert len(upstream_gets(workflow, order_id)) == 1 + 1


def test_workflow_wake_before_the_wait_ends_it_at_once(
    workflow: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCH_SECONDS", "600")
    wiring.reset()
    real_watch = wiring.orders_repo().watch

    def wake_first(order_id: str, task_token: str) -> bool | None:
        # A webhook lands between the create and the wait: no token is stored yet, so it is kept pending.
        assert wiring.wake_service().wake(order_id, by="test") == "deferred"
        return real_watch(order_id, task_token)

    monkeypatch.setattr(wiring.orders_repo(), "watch", wake_first)
    order_id = submit(workflow, planet_request())

    state, _event = finished(workflow, order_id)

    assert state == "success"


def test_workflow_partial_order_lands_only_delivered_items(workflow: AwsStack) -> None:
    order_id = submit(
        workflow,
        planet_request(
            order_type="partial",
            products=[
                {
                    "item_ids": ["20220304_093300_37_2430", "20220304_fail_1"],
                    "item_type": "PSScene",
                    "product_bundle": "analytic_udm2",
                }
            ],
        ),
    )

    state, _event = finished(workflow, order_id)

    assert state == "partial"
    keys = landed_keys(workflow, order_id)
    assert any("20220304_093300_37_2430" in key for key in keys)
    assert not any("fail" in key for key in keys)


def test_workflow_failed_upstream_ends_failed_with_planets_hints_and_lands_nothing(
    workflow: AwsStack,
) -> None:
    order_id = submit(
        workflow,
        planet_request(
            products=[
                {"item_ids": ["20220304_fail_1"], "item_type": "PSScene", "product_bundle": "analytic_udm2"}
            ]
        ),
    )

    state, event = finished(workflow, order_id)

    assert state == "failed"
    assert any("20220304_fail_1" in hint for hint in event["error_hints"])
    assert landed_keys(workflow, order_id) == set()


def test_workflow_cancelled_upstream_ends_cancelled(workflow: AwsStack) -> None:
    requests.post(f"{workflow.planet.url}/_fake/config", json={"queued_seconds": 3600}, timeout=5)
    order_id = submit(workflow, planet_request())
    wiring.planet_client().cancel_order(workflow.record(order_id).upstream_order_id)

    state, _event = finished(workflow, order_id)

    assert state == "cancelled"


def test_workflow_rejected_message_ends_failed_without_polling(workflow: AwsStack) -> None:
    order_id = submit(workflow, {"name": "no products at all"})

    state, event = finished(workflow, order_id)

    assert state == "failed"
    assert workflow.waits == []
    assert any("products" in hint for hint in event["error_hints"])


def test_workflow_corrupted_result_ends_failed_naming_the_file(workflow: AwsStack) -> None:
    workflow.planet_fault(op="storage", kind="corrupt", times=100, path_contains="udm2.tif")
    order_id = submit(workflow, planet_request())

    state, event = finished(workflow, order_id)

    assert state == "failed"
    assert any("ResultVerificationFailed" in hint and "udm2.tif" in hint for hint in event["error_hints"])
    assert not any(key.endswith("udm2.tif") for key in landed_keys(workflow, order_id))


def test_workflow_upstream_order_gone_ends_failed_with_the_error(workflow: AwsStack) -> None:
    requests.post(f"{workflow.planet.url}/_fake/config", json={"queued_seconds": 3600}, timeout=5)
    order_id = submit(workflow, planet_request())
    requests.post(f"{workflow.planet.url}/_fake/reset", timeout=5)  # Planet forgets the order: GET is 404

    state, event = finished(workflow, order_id)

    assert state == "failed"
    assert any(hint.startswith("UpstreamNotFound") for hint in event["error_hints"])


def test_workflow_past_deadline_ends_failed_saying_so(workflow: AwsStack) -> None:
    requests.post(f"{workflow.planet.url}/_fake/config", json={"queued_seconds": 3600}, timeout=5)
    order_id = submit(workflow, planet_request())
    wiring.orders_repo().update(order_id, {"submitted_at": utcnow() - timedelta(days=30)})

    state, event = finished(workflow, order_id)

    assert state == "failed"
    assert any("deadline" in hint for hint in event["error_hints"])
