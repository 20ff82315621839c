"""ReconcileFunction → service → DynamoDB, SQS and Step Functions under moto, the fake Planet upstream."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests
from harness import PLANET_KEY, AwsStack, api_event, intake_event, load_event
from order_core import wiring
from order_core.models.order import Phase, utcnow
from order_core.services.submit import upstream_request


@pytest.fixture
def stack(aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    monkeypatch.setenv("RECONCILE_MIN_AGE_SECONDS", "0")  # the test's orders are seconds old
    wiring.reset()
    return aws_stack


def create_order(stack: AwsStack) -> str:
    body = json.dumps(load_event("planet/create_scenes_direct.json"))
    response = stack.invoke("ApiFunction", api_event("POST", "/compute/ops/orders/v2", body=body))
    assert response["statusCode"] == 202, response
    return str(json.loads(response["body"])["id"])


def execution_names(stack: AwsStack, status: str | None = None) -> list[str]:
    sfn = boto3.client("stepfunctions")
    kwargs: dict[str, Any] = {"stateMachineArn": stack.ref("OrderWorkflow")}
    if status:
        kwargs["statusFilter"] = status
    return sorted(e["name"] for e in sfn.list_executions(**kwargs)["executions"])


def purge_intake(stack: AwsStack) -> None:
    boto3.client("sqs").purge_queue(QueueUrl=stack.ref("IntakeQueue"))


def test_reconcile_function_restarts_a_stopped_workflow_once(stack: AwsStack) -> None:
    order_id = create_order(stack)
    assert stack.invoke("SubmitFunction", intake_event(stack)) == {"batchItemFailures": []}
    sfn = boto3.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=stack.ref("OrderWorkflow"))["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])

    first = stack.invoke("ReconcileFunction", {})
    second = stack.invoke("ReconcileFunction", {})  # the restarted execution is running: nothing to do

    assert first == {"examined": 1, "reconciled": {"polling": 1}}
    assert second == {"examined": 1, "reconciled": {}}
    assert execution_names(stack) == [order_id, f"{order_id}-r1"]
    assert execution_names(stack, "RUNNING") == [f"{order_id}-r1"]
    described = sfn.describe_execution(
        executionArn=execution["executionArn"].rsplit(":", 1)[0] + f":{order_id}-r1"
    )
    assert json.loads(described["input"])["submitted"] is True
    assert len(stack.planet_orders()) == 1


def test_reconcile_function_sends_an_accepted_order_whose_message_was_lost_to_the_submit_path(
    stack: AwsStack,
) -> None:
    order_id = create_order(stack)
    purge_intake(stack)

    assert stack.invoke("ReconcileFunction", {}) == {"examined": 1, "reconciled": {"accepted": 1}}
    assert stack.invoke("SubmitFunction", intake_event(stack)) == {"batchItemFailures": []}

    assert stack.record(order_id).phase == Phase.SUBMITTED
    assert execution_names(stack) == [order_id]
    assert len(stack.planet_orders()) == 1


def test_reconcile_function_finds_the_order_planet_already_has_for_a_submitting_record(
    stack: AwsStack,
) -> None:
    """The POST reached Planet and then everything stopped: the record says submitting, nothing runs."""
    order_id = create_order(stack)
    purge_intake(stack)
    record = wiring.orders_repo().update(
        order_id, {"phase": Phase.SUBMITTING, "submit_attempts": 1, "submit_started_at": utcnow()}
    )
    assert record is not None
    posted = requests.post(
        f"{stack.planet.base_url}/orders/v2",
        json=upstream_request(record),
        headers={"Authorization": f"api-key {PLANET_KEY}"},
        timeout=10,
    )
    assert posted.status_code == 202, posted.text

    assert stack.invoke("ReconcileFunction", {}) == {"examined": 1, "reconciled": {"submitting": 1}}
    assert stack.invoke("SubmitFunction", intake_event(stack)) == {"batchItemFailures": []}

    assert [o["id"] for o in stack.planet_orders()] == [posted.json()["id"]]
    assert stack.record(order_id).upstream_order_id == posted.json()["id"]
    assert execution_names(stack) == [order_id]
