"""In-memory stand-ins for what SubmitService talks to: the orders table, Planet, the workflow, the DLQ.

Enough of each collaborator's contract for the intake and submission paths: conditional create, updates
guarded by phase (and by ``cancel_requested`` when the claim asks for it), every write recorded.
"""

from __future__ import annotations

import uuid
from typing import Any

from order_core.errors import UpstreamRateLimited, UpstreamUnavailable
from order_core.models.order import OrderRecord, Phase, WorkflowInput
from order_core.models.planet import OrderState, PlanetOrder
from order_core.services.bundles import BundlesSpecSource
from order_core.services.submit import IntakeMessage, MessageAttribute, SubmitService


class FakeOrders:
    def __init__(self) -> None:
        self.records: dict[str, OrderRecord] = {}
        self.writes: list[dict[str, Any]] = []

    def create(self, record: OrderRecord) -> bool:
        if record.order_id in self.records:
            return False
        self.records[record.order_id] = record
        self.writes.append({"create": record.order_id, "request": record.request})
        return True

    def get(self, order_id: str) -> OrderRecord | None:
        return self.records.get(order_id)

    def delete(self, order_id: str) -> None:
        self.records.pop(order_id, None)

    def update(
        self,
        order_id: str,
        changes: dict[str, Any],
        *,
        only_in_phases: Any = None,
        condition: str | None = None,
        **_: Any,
    ) -> OrderRecord | None:
        record = self.records.get(order_id)
        if record is None or (only_in_phases is not None and record.phase not in tuple(only_in_phases)):
            return None
        if condition and "cancel_requested" in condition and record.cancel_requested:
            return None
        self.writes.append({"update": order_id, **changes})
        self.records[order_id] = record.model_copy(update=changes)
        return self.records[order_id]


class FakePlanet:
    """Creates orders; ``unavailable`` POSTs fail first (as an ambiguous 5xx would)."""

    def __init__(self, unavailable: int = 0, rate_limited: int = 0, list_unavailable: int = 0) -> None:
        self.created: list[dict[str, Any]] = []
        self.unavailable = unavailable
        self.rate_limited = rate_limited
        self.list_unavailable = list_unavailable
        self.create_calls = 0

    def create_order(self, request: dict[str, Any]) -> PlanetOrder:
        self.create_calls += 1
        if self.rate_limited:
            self.rate_limited -= 1
            raise UpstreamRateLimited("Planet answered 429", retry_after=None)
        if self.unavailable:
            self.unavailable -= 1
            raise UpstreamUnavailable("Planet answered 503")
        self.created.append(request)
        return PlanetOrder(id=str(uuid.uuid4()), name=str(request["name"]), state=OrderState.queued)

    def list_orders(self, **_filters: Any) -> list[PlanetOrder]:
        if self.list_unavailable:
            self.list_unavailable -= 1
            raise UpstreamUnavailable("Planet answered 502")
        return []

    def cancel_order(self, order_id: str) -> PlanetOrder:
        return PlanetOrder(id=order_id, state=OrderState.cancelled)


class FakeWorkflow:
    def __init__(self) -> None:
        self.started: list[WorkflowInput] = []

    def start(self, workflow_input: WorkflowInput) -> bool:
        if any(s.order_id == workflow_input.order_id for s in self.started):
            return False
        self.started.append(workflow_input)
        return True


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_refused(self, body: str, attributes: dict[str, tuple[str, str | bytes]], reason: str) -> None:
        self.sent.append({"body": body, "attributes": dict(attributes), "reason": reason})


class Rig:
    def __init__(
        self,
        *,
        unavailable: int = 0,
        rate_limited: int = 0,
        list_unavailable: int = 0,
        bundles: BundlesSpecSource | None = None,
    ) -> None:
        self.orders = FakeOrders()
        self.planet = FakePlanet(unavailable, rate_limited, list_unavailable)
        self.workflow = FakeWorkflow()
        self.dead_letters = FakeDeadLetters()
        self.service = SubmitService(
            self.orders,
            self.planet,
            self.workflow,
            dead_letters=self.dead_letters,
            bundles=bundles,
        )

    def process(self, body: str, message_id: str | None = None, **attributes: str | bytes) -> str | None:
        return self.service.process(message(body, message_id, **attributes))


def message(body: str, message_id: str | None = None, **attributes: str | bytes) -> IntakeMessage:
    return IntakeMessage(
        message_id=message_id or str(uuid.uuid4()),
        body=body,
        attributes={
            name: MessageAttribute(data_type="Binary", binary_value=value)
            if isinstance(value, bytes)
            else MessageAttribute(string_value=value)
            for name, value in attributes.items()
        },
    )


def submitted_phase(record: OrderRecord | None) -> bool:
    return record is not None and record.phase == Phase.SUBMITTED
