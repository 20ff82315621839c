"""The real workflow calls LandResults again while it answers ``complete: false``, and the order still ends
with every file landed and one event. The first invocation is made to run out of time at once."""

from __future__ import annotations

import json
import time
import types
from typing import Any

import boto3
import pytest
from harness import AwsStack, intake_event, load_event
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
from order_core import wiring

pytestmark = pytest.mark.execute_workflows


@pytest.fixture
def workflow(aws_stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    monkeypatch.setattr(wait_function.WaitFunction, "_wait_interval", lambda *_a, **_k: time.sleep(0.05))
    monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=lambda _seconds: None))
    return aws_stack


class OutOfTimeOnce:
    """``wiring.landing_service`` whose first ``land`` finds no time left; later ones run normally."""

    def __init__(self, real_factory: Any) -> None:
        self.calls: list[bool] = []
        self._real_factory = real_factory

    def __call__(self) -> Any:
        real = self._real_factory()
        outer = self

        class Service:
            def land(self, order_id: str, seconds_left: Any) -> Any:
                first = not outer.calls
                outer.calls.append(first)
                return real.land(order_id, (lambda: 0.0) if first else seconds_left)

        return Service()

    def cache_clear(self) -> None:
        pass


def test_landing_out_of_time_is_called_again_by_the_workflow_and_the_order_lands(
    workflow: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = OutOfTimeOnce(wiring.landing_service)
    monkeypatch.setattr(wiring, "landing_service", service)
    sqs = boto3.client("sqs")
    request = load_event("planet/create_scenes_direct.json")
    sqs.send_message(QueueUrl=workflow.ref("IntakeQueue"), MessageBody=json.dumps(request))
    workflow.invoke("SubmitFunction", intake_event(workflow))
    sfn = boto3.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=workflow.ref("OrderWorkflow"))["executions"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, "workflow did not finish"
        time.sleep(0.05)

    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert described["status"] == "SUCCEEDED", json.dumps(history[-4:], default=str)[:3000]
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered.count("LandResults") == 2
    assert service.calls == [True, False]
    (event,) = workflow.completion_events()
    assert event["message"]["state"] == "success"
    assert event["message"]["files"] >= 1
