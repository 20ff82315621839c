"""NotifyFunction: calls tenants' webhooks queued by Finalize, signed, retried with backoff, dead-lettered."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from order_core import wiring
from order_core.errors import RetryLater
from order_core.observability import logger, metrics, tracer
from order_core.services.notify import WebhookMessage, WebhookRefused
from pydantic import ValidationError

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError):
        return 1


def record_handler(record: SQSRecord) -> None:
    try:
        message = WebhookMessage.model_validate_json(record.body or "")
    except ValidationError:
        logger.error("unreadable webhook message: dead-lettered", extra={"message_id": record.message_id})
        wiring.webhook_queue().dead_letter(record.body or "", "not a webhook message")
        return
    try:
        wiring.notify_service().deliver(message, _receive_count(record))
    except WebhookRefused as exc:
        # Retrying cannot make a refused target acceptable: straight to the dead-letter queue (alarmed).
        logger.warning("webhook target refused", extra={"order_id": message.order_id, "reason": str(exc)})
        metrics.add_metric(name="WebhooksRefused", unit="Count", value=1)
        wiring.webhook_queue().dead_letter(record.body or "", str(exc))
    except RetryLater as exc:
        logger.info(
            "webhook call failed; retried later",
            extra={"order_id": message.order_id, "retry_in_seconds": exc.seconds, "reason": str(exc)},
        )
        wiring.webhook_queue().retry_later(record.receipt_handle, exc.seconds)
        raise


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
