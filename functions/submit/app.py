"""SubmitFunction: consumes the intake queue and submits each order to Planet exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.observability import logger, metrics, tracer
from order_core.services.submit import IntakeMessage, RetryLater

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _attribute(record: SQSRecord, name: str) -> str | None:
    # Not .get(): the data class only wraps values read with [], .get returns the raw dict.
    attribute = record.message_attributes[name] if name in record.message_attributes else None  # noqa: SIM401
    return attribute.string_value if attribute is not None else None


def record_handler(record: SQSRecord) -> None:
    message = IntakeMessage(
        message_id=record.message_id,
        body=record.body,
        message_type=_attribute(record, "message_type"),
        tenant=_attribute(record, "tenant"),
        idempotency_key=_attribute(record, "idempotency_key"),
    )
    try:
        wiring.submit_service().process(message)
    except RetryLater as exc:
        logger.info("submission deferred", extra={"retry_in_seconds": exc.seconds, "reason": str(exc)})
        wiring.intake_queue().retry_later(record.receipt_handle, exc.seconds)
        raise


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
