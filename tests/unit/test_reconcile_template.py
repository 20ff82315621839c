"""What template.yaml promises about the reconciler: a schedule, and only the permissions it needs."""

from __future__ import annotations

from typing import Any

from gateway_local.template import load_template
from harness import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
RECONCILE = TEMPLATE.resources["ReconcileFunction"].properties


def test_reconcile_function_runs_on_a_schedule() -> None:
    (event,) = RECONCILE["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"].startswith("rate(")


def test_reconcile_function_may_read_orders_restart_workflows_and_enqueue_nothing_more() -> None:
    policies: list[Any] = RECONCILE["Policies"]
    templates = {
        name: value for policy in policies if "Statement" not in policy for name, value in policy.items()
    }
    assert templates == {
        "DynamoDBReadPolicy": {"TableName": {"Ref": "OrdersTable"}},
        "SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["IntakeQueue", "QueueName"]}},
    }
    statements = [s for policy in policies for s in policy.get("Statement", [])]
    actions = sorted(action for statement in statements for action in statement["Action"])
    assert actions == [
        "dynamodb:PutItem",  # the list-keys backfill: its cursor item
        "dynamodb:UpdateItem",  # ... and three index keys on old orders
        "states:DescribeExecution",
        "states:ListExecutions",
        "states:StartExecution",
    ]
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert all("*" not in str(statement["Resource"]).split(":execution:")[0] for statement in statements)


def test_reconcile_function_waits_longer_than_a_submit_retry_before_repairing() -> None:
    variables = RECONCILE["Environment"]["Variables"]
    assert int(variables["RECONCILE_MIN_AGE_SECONDS"]) > 900  # a submit retry waits up to 900 s
