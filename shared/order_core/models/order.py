"""The domain order: what the gateway records about each order, and the messages that move it along."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

# The lifecycle lives in models/lifecycle.py; ``Phase`` is re-exported for the callers that import it here.
from order_core.models.lifecycle import Phase as Phase
from order_core.models.planet import CLOUD_DESTINATIONS, OrderState


def utcnow() -> datetime:
    return datetime.now(UTC)


def planet_time(value: datetime) -> str:
    """RFC 3339 with milliseconds and ``Z``, as Planet writes timestamps."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class LandedFile(BaseModel):
    """One result file copied into the results bucket and verified against the manifest."""

    path: str = Field(description="Path relative to the order's folder, as in manifest.json")
    key: str = Field(description="S3 key of the landed copy")
    size: int
    md5: str
    sha256: str
    media_type: str | None = None


class OrderRecord(BaseModel):
    """An order as the gateway keeps it (one DynamoDB item)."""

    model_config = ConfigDict(validate_assignment=True)

    order_id: str
    tenant: str
    name: str
    source_type: str = "scenes"
    request: dict[str, Any]
    state: OrderState = OrderState.queued
    phase: Phase = Phase.ACCEPTED
    created_on: datetime = Field(default_factory=utcnow)
    last_modified: datetime = Field(default_factory=utcnow)
    last_message: str = "Preparing order"
    error_hints: list[str] = Field(default_factory=list)

    #: Refused before reaching Planet (invalid SQS message, or Planet answered 4xx): ends ``failed``.
    rejected: bool = False
    #: Cancelled by the client before it reached Planet: never submitted, ends ``cancelled``.
    cancel_requested: bool = False
    #: SHA-256 of an SQS producer's message body: the same ``idempotency_key`` with another body is refused.
    intake_sha256: str | None = None

    upstream_order_id: str | None = None
    upstream_state: str | None = None
    submit_started_at: datetime | None = None
    submit_attempts: int = 0
    #: While a submit attempt holds the claim (``SubmitService``): no other delivery POSTs until then.
    submit_lease_until: datetime | None = None
    submitted_at: datetime | None = None
    #: Consecutive polls whose 2xx answer could not be read; reset by a readable one (services/poll.py).
    unusable_polls: int = 0
    #: The task token of the workflow's current wait for a change (services/wake.py); taken by one waker.
    wake_token: str | None = Field(default=None, repr=False)
    #: A wake arrived while no wait was stored: the next wait ends at once.
    wake_pending: bool = False
    #: When the order last asked Planet about itself (a GET; a sweep's record does not count).
    last_own_poll_at: datetime | None = None

    results: list[LandedFile] = Field(default_factory=list)
    #: Paths (as in ``results``) of delivered files still landing: the order's GET lists them as pending.
    pending_results: list[str] = Field(default_factory=list)
    landed_bytes: int = 0
    delivery_key: str | None = None
    event_published_at: datetime | None = None

    @property
    def hosting(self) -> bool:
        return bool(self.request.get("hosting"))

    @property
    def native_delivery(self) -> bool:
        """Planet delivers the results itself (a cloud destination or hosting): nothing to land.

        A ``delivery`` block with only archive or layout options (``archive_type``, ``single_archive``,
        ``archive_filename``, ``layout``) is still a direct-download order: its results are landed.
        """
        delivery = self.request.get("delivery")
        cloud = isinstance(delivery, dict) and any(delivery.get(name) for name in CLOUD_DESTINATIONS)
        return cloud or self.hosting


#: Message attribute ``message_type`` of intake messages sent by the API (external producers send none).
ACCEPTED_MESSAGE_TYPE = "gateway.order.accepted"


class AcceptedOrderMessage(BaseModel):
    """What the API puts on the intake queue for an order it has recorded."""

    order_id: str
    tenant: str


class WorkflowInput(BaseModel):
    """The input of one order's workflow execution. Ids only: never the request, never a secret."""

    order_id: str
    tenant: str
    submitted: bool
    poll: dict[str, Any] = Field(
        default_factory=lambda: {
            "attempt": 0,
            "upstream_state": None,
            "wait_seconds": 0,
            "deadline_passed": False,
            "retry": False,
            "watch_seconds": _watch_seconds(),
        }
    )
    error: dict[str, Any] | None = None


def _watch_seconds() -> int:
    """How long the workflow's first wait for a change lasts (settings ``watch_seconds``)."""
    from order_core.config import get_settings

    return get_settings().watch_seconds


class PollResult(BaseModel):
    """What one poll tells the workflow: the upstream state and how long to wait before the next poll."""

    attempt: int
    upstream_state: str | None
    wait_seconds: int
    deadline_passed: bool = False
    #: The GET met a transient fault (429, 5xx, deferred by the pacer): poll again after ``wait_seconds``.
    retry: bool = False
    #: How long the next wait for a change lasts before the order checks on its own.
    watch_seconds: int = 3600


class LandingProgress(BaseModel):
    complete: bool
    landed_files: int


#: The completion event's schema version (docs/events/). Adding an optional field keeps it; removing or
#: changing the meaning of one makes a new version, published alongside the old for a while.
COMPLETION_EVENT_SCHEMA_VERSION: Literal["1"] = "1"
TERMINAL_STATES: list[str] = [state.value for state in OrderState if state.is_final]
_TERMINAL_ENUM: dict[str, JsonValue] = {"enum": list[JsonValue](TERMINAL_STATES)}


class CompletionEvent(BaseModel):
    """The one SNS message published per order when it reaches a terminal state.

    Its JSON Schema, AsyncAPI document and examples are generated from this model (docs/events/,
    ``make event-schema``); field descriptions here are the published contract.
    """

    # Every field is in every message, defaults included: the schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    schema_version: Literal["1"] = Field(
        default=COMPLETION_EVENT_SCHEMA_VERSION,
        description="Version of this message's schema (docs/events/completion-event.v<version>.schema.json)",
    )
    event_type: Literal["order.completed"] = "order.completed"
    event_id: str = Field(
        description="Stable per order (a UUID derived from order_id): a redelivery or an operator's replay "
        "carries the same id, so subscribers can drop duplicates by it"
    )
    order_id: str = Field(description="The gateway's order id, as the API returns it")
    name: str = Field(description="The order's name, as submitted")
    tenant: str = Field(description="The tenant whose API key created the order")
    state: OrderState = Field(
        description="Terminal state: success, partial (some items failed), failed or cancelled",
        json_schema_extra=_TERMINAL_ENUM,
    )
    source_type: str = Field(description="Planet's source_type of the order (scenes, basemaps...)")
    upstream_order_id: str | None = Field(description="Planet's order id; null if it never reached Planet")
    created_on: str = Field(description="When the gateway accepted the order (RFC 3339, UTC)")
    completed_on: str = Field(description="When the order reached its terminal state (RFC 3339, UTC)")
    files: int = Field(ge=0, description="Result files landed and verified in S3 (manifest.json not counted)")
    bytes: int = Field(ge=0, description="Total size of those files")
    error_hints: list[str] = Field(description="Why the order or some of its items failed; empty on success")
    delivery: dict[str, str] | None = Field(
        default=None, description="S3 location of delivery.json, the full list of landed files"
    )

    @field_validator("state")
    @classmethod
    def _terminal(cls, state: OrderState) -> OrderState:
        if not state.is_final:
            raise ValueError(f"a completion event's state is terminal, not {state.value}")
        return state


class CompletionEventAttributes(BaseModel):
    """The SNS message attributes of a completion event: what a subscription's filter policy can match."""

    state: OrderState = Field(
        description="The event's state (success, partial, failed, cancelled)",
        json_schema_extra=_TERMINAL_ENUM,
    )
    tenant: str = Field(description="The event's tenant")
    source_type: str = Field(description="The event's source_type")
    event_id: str = Field(description="The event's event_id")
    schema_version: str = Field(description="The event's schema_version")
    replay: Literal["true"] | None = Field(
        default=None,
        description='Present, "true", only on an operator\'s replay of an event already published '
        "(python -m order_core.admin events replay); the message is otherwise identical",
    )

    @classmethod
    def of(cls, event: CompletionEvent, *, replay: bool = False) -> CompletionEventAttributes:
        return cls(
            state=event.state,
            tenant=event.tenant,
            source_type=event.source_type,
            event_id=event.event_id,
            schema_version=event.schema_version,
            replay="true" if replay else None,
        )

    def sns(self) -> dict[str, dict[str, str]]:
        """As SNS ``MessageAttributes`` (all strings; absent ones left out)."""
        values = self.model_dump(mode="json", exclude_none=True)
        return {name: {"DataType": "String", "StringValue": str(value)} for name, value in values.items()}


class PollRequest(BaseModel):
    """The PollFunction's event, as the state machine builds it.

    ``poll``: one GET of the upstream order (``wake`` is what ended the wait before it: a waker's output,
    or the wait's timeout error). ``watch``: store ``task_token``, the workflow's wait for a change.
    """

    action: Literal["poll", "watch"] = "poll"
    order_id: str
    tenant: str
    attempt: int = 0
    task_token: str | None = Field(default=None, repr=False)
    wake: dict[str, Any] | None = None

    @property
    def woken(self) -> bool:
        """The wait was ended by a waker (a webhook, the sweep), not by its timeout."""
        return bool(self.wake and self.wake.get("woken") is True)


class FinalizeRequest(BaseModel):
    """The FinalizeFunction's event: ``land`` the results, or ``finalize`` the order."""

    action: Literal["land", "finalize"]
    order_id: str
    tenant: str
    upstream_state: str | None = None
    deadline_passed: bool | None = False
    error: dict[str, Any] | None = None
