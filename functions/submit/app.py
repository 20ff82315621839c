"""SubmitFunction: consumes the intake queue and submits each order to Planet exactly once."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.errors import RetryLater
from order_core.observability import logger, metrics, tracer
from order_core.services.submit import IntakeMessage, MessageAttribute

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _attributes(record: SQSRecord) -> dict[str, MessageAttribute]:
    """The message's attributes as the producer sent them (Lambda delivers binary values base64-encoded)."""
    attributes: dict[str, MessageAttribute] = {}
    for name, raw in (record.raw_event.get("messageAttributes") or {}).items():
        binary = raw.get("binaryValue")
        try:
            binary_value = base64.b64decode(binary) if binary is not None else None
        except (binascii.Error, ValueError):
            binary_value = None
        attributes[name] = MessageAttribute(
            data_type=raw.get("dataType") or "String",
            string_value=raw.get("stringValue"),
            binary_value=binary_value,
        )
    return attributes


def record_handler(record: SQSRecord) -> None:
    message = IntakeMessage(
        message_id=record.message_id, body=record.body or "", attributes=_attributes(record)
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
