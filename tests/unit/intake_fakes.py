"""In-memory stand-ins for what SubmitService talks to: the orders table, Planet, the workflow, the DLQ.

The orders table is the layer's ``InMemoryOrderStore`` (the same guards as the DynamoDB adapter, every write
logged); the others implement just enough of their collaborator's contract for intake and submission.
"""

from __future__ import annotations

import uuid
from typing import Any

from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.errors import UpstreamRateLimited, UpstreamUnavailable
from order_core.models.order import OrderRecord, Phase, WorkflowInput
from order_core.models.planet import OrderState, PlanetOrder
from order_core.services.bundles import BundlesSpecSource
from order_core.services.submit import IntakeMessage, MessageAttribute, SubmitService


class FakePlanet:
    """Creates orders; ``unavailable`` POSTs fail first (as an ambiguous 5xx would)."""

    def __init__(
        self, unavailable: int = 0, rate_limited: int = 0, list_unavailable: int = 0, deferred: int = 0
    ) -> None:
        self.created: list[dict[str, Any]] = []
        #: POSTs the deployment's pace holds back first (never sent: PlanetClient raises before sending).
        self.deferred = deferred
        self.unavailable = unavailable
        self.rate_limited = rate_limited
        self.list_unavailable = list_unavailable
        self.create_calls = 0

    def create_order(self, request: dict[str, Any]) -> PlanetOrder:
        if self.deferred:
            self.deferred -= 1
            raise UpstreamRateLimited("no create slot within 2 s", retry_after=7.5, deferred=True)
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
        deferred: int = 0,
        bundles: BundlesSpecSource | None = None,
    ) -> None:
        self.orders = InMemoryOrderStore()
        self.planet = FakePlanet(unavailable, rate_limited, list_unavailable, deferred)
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
