"""The reconciler with in-memory fakes: every stranded phase goes back to the path that owns it, once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from intake_fakes import Rig
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.adapters.messaging import order_id_of_execution
from order_core.models.order import AcceptedOrderMessage, OrderRecord, Phase, WorkflowInput, utcnow
from order_core.models.planet import OrderState, PlanetOrder
from order_core.services.reconcile import ReconcileService
from order_core.services.submit import IntakeMessage, MessageAttribute, upstream_marker, upstream_request

LONG_AGO = utcnow() - timedelta(hours=2)
# Accepted-order messages carry canonical order ids.
SUBMITTING_ID = "3b1f0c8e-5a57-4d0b-8f5e-6a9a4d3e2c11"


class FakeExecutions:
    """Step Functions as the reconciler sees it: execution names and their status."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.inputs: dict[str, WorkflowInput] = {}

    def running_order_ids(self) -> set[str]:
        return {order_id_of_execution(n) for n, s in self.status.items() if s == "RUNNING"}

    def restart(self, workflow_input: WorkflowInput) -> str | None:
        for number in range(100):
            name = workflow_input.order_id + (f"-r{number}" if number else "")
            if name not in self.status:
                self.status[name] = "RUNNING"
                self.inputs[name] = workflow_input
                return name
            if self.status[name] == "RUNNING":
                return None
        raise AssertionError("too many restarts")


class FakeIntake:
    def __init__(self) -> None:
        self.sent: list[AcceptedOrderMessage] = []

    def send_accepted(self, message: AcceptedOrderMessage) -> None:
        self.sent.append(message)


class Rec:
    def __init__(self, min_age: timedelta = timedelta(minutes=30)) -> None:
        self.orders = InMemoryOrderStore()
        self.executions = FakeExecutions()
        self.intake = FakeIntake()
        self.service = ReconcileService(self.orders, self.executions, self.intake, min_age=min_age)  # type: ignore[arg-type]

    def add(self, order_id: str, **fields: Any) -> OrderRecord:
        record = OrderRecord(
            order_id=order_id,
            tenant="default",
            name="an order",
            request={"name": "an order", "products": []},
            last_modified=LONG_AGO,
            **fields,
        )
        self.orders.records[order_id] = record
        return record


SUBMITTED = {"phase": Phase.SUBMITTED, "upstream_order_id": "up-1", "state": OrderState.running}


def test_reconcile_accepted_order_without_message_is_sent_to_the_submit_path_again() -> None:
    rec = Rec()
    rec.add("o-accepted")

    report = rec.service.run()

    assert [m.order_id for m in rec.intake.sent] == ["o-accepted"]
    assert rec.executions.status == {}  # the submit path starts the workflow once Planet has the order
    assert report.by_phase == {"accepted": 1}


def test_reconcile_submitting_order_reconciles_by_marker_and_never_posts_twice() -> None:
    """A POST reached Planet, the write recording it did not: the submit path finds it by its marker."""
    rec = Rec()
    record = rec.add(SUBMITTING_ID, phase=Phase.SUBMITTING, submit_attempts=1, submit_started_at=LONG_AGO)
    rec.service.run()
    (message,) = rec.intake.sent

    rig = Rig()
    rig.orders.records = rec.orders.records
    name = str(upstream_request(record)["name"])
    earlier = PlanetOrder(id="up-earlier", name=name, state=OrderState.queued)
    rig.planet.list_orders = lambda **_: [earlier]  # type: ignore[method-assign]
    rig.service.process(
        IntakeMessage(
            message_id="m-1",
            body=message.model_dump_json(),
            attributes={"message_type": MessageAttribute(string_value="gateway.order.accepted")},
        )
    )

    assert rig.planet.created == []
    after = rig.orders.records[SUBMITTING_ID]
    assert (after.phase, after.upstream_order_id) == (Phase.SUBMITTED, "up-earlier")
    assert earlier.name.endswith(upstream_marker(SUBMITTING_ID))


@pytest.mark.parametrize(
    ("fields", "phase"),
    [
        (SUBMITTED, "polling"),
        ({**SUBMITTED, "phase": Phase.DELIVERING}, "landing"),
        ({**SUBMITTED, "phase": Phase.DELIVERING, "event_published_at": LONG_AGO}, "finalizing"),
    ],
)
def test_reconcile_order_whose_execution_failed_restarts_its_workflow_under_a_new_name(
    fields: dict[str, Any], phase: str
) -> None:
    rec = Rec()
    rec.add("o-1", **fields)
    rec.executions.status["o-1"] = "FAILED"

    report = rec.service.run()

    assert rec.executions.status == {"o-1": "FAILED", "o-1-r1": "RUNNING"}
    assert rec.executions.inputs["o-1-r1"] == WorkflowInput(order_id="o-1", tenant="default", submitted=True)
    assert report.by_phase == {phase: 1}
    assert rec.intake.sent == []


def test_reconcile_order_whose_execution_was_lost_starts_it_under_its_own_name() -> None:
    rec = Rec()
    rec.add("o-lost", **SUBMITTED)  # a local restart forgets every execution

    rec.service.run()

    assert rec.executions.status == {"o-lost": "RUNNING"}


def test_reconcile_rejected_order_goes_to_a_workflow_that_only_finalizes_it() -> None:
    rec = Rec()
    rec.add("o-rejected", rejected=True, error_hints=["bad"])
    rec.executions.status["o-rejected"] = "ABORTED"

    rec.service.run()

    assert rec.intake.sent == []
    assert rec.executions.inputs["o-rejected-r1"].submitted is False


def test_reconcile_order_with_a_running_execution_is_left_alone() -> None:
    rec = Rec()
    rec.add("o-1", **SUBMITTED)
    rec.executions.status.update({"o-1": "FAILED", "o-1-r1": "RUNNING"})

    report = rec.service.run()

    assert report.repairs == []
    assert report.examined == 1
    assert len(rec.executions.status) == 2


def test_reconcile_order_changed_recently_is_left_alone() -> None:
    """A submit retry may be waiting in the queue, or a workflow may have started a moment ago."""
    rec = Rec()
    for order_id, fields in (("o-fresh", SUBMITTED), ("o-new", {})):
        record = rec.add(order_id, **fields)
        rec.orders.records[order_id] = record.model_copy(update={"last_modified": utcnow()})

    assert rec.service.run().repairs == []
    assert rec.intake.sent == [] and rec.executions.status == {}


def test_reconcile_run_twice_starts_one_workflow() -> None:
    rec = Rec()
    rec.add("o-1", **SUBMITTED)

    first, second = rec.service.run(), rec.service.run()

    assert (len(first.repairs), len(second.repairs)) == (1, 0)
    assert list(rec.executions.status) == ["o-1"]


def test_reconcile_finalized_or_terminal_orders_are_not_touched() -> None:
    rec = Rec()
    rec.add("o-done", phase=Phase.FINALIZED, state=OrderState.success)

    report = rec.service.run()

    assert (report.examined, report.repairs) == (0, [])


def test_reconcile_reports_repairs_as_a_metric_per_phase(capsys: pytest.CaptureFixture[str]) -> None:
    rec = Rec()
    rec.add("o-a")
    rec.add("o-b")
    rec.add("o-c", **SUBMITTED)

    report = rec.service.run()

    assert report.summary() == "reconciled 3 orders: 2 accepted, 1 polling (3 active checked)"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    emitted = {line["phase"]: line["OrdersReconciled"] for line in lines}
    assert emitted == {"accepted": [2.0], "polling": [1.0]} or emitted == {"accepted": 2.0, "polling": 1.0}


def test_order_id_of_execution_strips_only_a_restart_suffix() -> None:
    order_id = "6f1f4a52-8a0e-4b8e-9d55-2f3c1bb7a9a1"
    assert order_id_of_execution(order_id) == order_id
    assert order_id_of_execution(f"{order_id}-r12") == order_id
    assert order_id_of_execution("my-run") == "my-run"


def test_reconcile_unknown_planet_order_in_submitting_is_posted_once() -> None:
    """Nothing reached Planet: the submit path POSTs, once, after the reconciler's message."""
    rec = Rec()
    rec.add(SUBMITTING_ID, phase=Phase.SUBMITTING, submit_attempts=1, submit_started_at=LONG_AGO)
    rec.service.run()
    rec.service.run()  # the order is still untouched: a second message, as a second reconciler would send
    rig = Rig()
    rig.orders.records = rec.orders.records
    for message in rec.intake.sent:
        rig.service.process(
            IntakeMessage(
                message_id=message.order_id,
                body=message.model_dump_json(),
                attributes={"message_type": MessageAttribute(string_value="gateway.order.accepted")},
            )
        )

    assert len(rig.planet.created) == 1
    assert rig.orders.records[SUBMITTING_ID].phase == Phase.SUBMITTED
