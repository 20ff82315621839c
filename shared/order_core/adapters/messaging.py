"""SQS (intake), Step Functions (workflow) and SNS (completion events)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from order_core.adapters.aws import client
from order_core.models.order import (
    ACCEPTED_MESSAGE_TYPE,
    AcceptedOrderMessage,
    CompletionEvent,
    CompletionEventAttributes,
    WorkflowInput,
)


class IntakeQueue:
    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self._url = queue_url
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs

    def send_accepted(self, message: AcceptedOrderMessage) -> None:
        self.sqs.send_message(
            QueueUrl=self._url,
            MessageBody=message.model_dump_json(),
            MessageAttributes={"message_type": {"DataType": "String", "StringValue": ACCEPTED_MESSAGE_TYPE}},
        )

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a message visible again after ``seconds`` (SQS caps visibility at 12 hours)."""
        self.sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )


#: Characters SQS refuses in bodies and attribute values (it allows #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD and
#: the supplementary planes). Only a hand-made Lambda event can carry them: SQS itself never delivers them.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: SQS allows ten message attributes; a refused message keeps nine of its own plus ``refusal_reason``.
_MAX_ATTRIBUTES = 10
REFUSAL_REASON_ATTRIBUTE = "refusal_reason"


def _sqs_text(value: str) -> str:
    return _NOT_SQS_TEXT.sub("\ufffd", value)


class IntakeDeadLetters:
    """The intake queue's dead-letter queue, where refused messages are put with the reason they were refused.

    ``attributes`` maps each of the message's attribute names to its data type and value (text for String
    and Number types, bytes for Binary ones), as the producer sent them.
    """

    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self._url = queue_url
        self._sqs = sqs

    def send_refused(self, body: str, attributes: Mapping[str, tuple[str, str | bytes]], reason: str) -> None:
        sqs = self._sqs or client("sqs")
        kept: dict[str, dict[str, Any]] = {}
        dropped: list[str] = []
        for name, (data_type, value) in attributes.items():
            if name == REFUSAL_REASON_ATTRIBUTE:
                continue
            if len(kept) == _MAX_ATTRIBUTES - 1 or not value:
                dropped.append(name)
            elif isinstance(value, bytes):
                kept[name] = {"DataType": data_type, "BinaryValue": value}
            else:
                kept[name] = {"DataType": data_type, "StringValue": _sqs_text(value)}
        if dropped:
            reason = f"{reason} (attributes not kept: {', '.join(dropped)})"
        kept[REFUSAL_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": _sqs_text(reason)}
        sqs.send_message(QueueUrl=self._url, MessageBody=_sqs_text(body) or " ", MessageAttributes=kept)


class OrderWorkflow:
    def __init__(self, state_machine_arn: str, sfn: Any = None) -> None:
        self._arn = state_machine_arn
        self._sfn = sfn

    def start(self, workflow_input: WorkflowInput) -> bool:
        """Start the order's execution, named by the order id: a second start is a no-op.

        Returns False when the execution already existed.
        """
        sfn = self._sfn or client("stepfunctions")
        try:
            sfn.start_execution(
                stateMachineArn=self._arn,
                name=workflow_input.order_id,
                input=workflow_input.model_dump_json(),
            )
        except sfn.exceptions.ExecutionAlreadyExists:
            return False
        return True


class CompletionEvents:
    def __init__(self, topic_arn: str, sns: Any = None) -> None:
        self._arn = topic_arn
        self._sns = sns

    def publish(self, event: CompletionEvent, *, replay: bool = False) -> str:
        """Publish ``event`` (docs/events/); ``replay`` marks an operator's deliberate re-publication."""
        sns = self._sns or client("sns")
        response = sns.publish(
            TopicArn=self._arn,
            Subject=f"Planet order {event.state.value}"[:100],
            Message=json.dumps(event.model_dump(mode="json"), separators=(",", ":")),
            MessageAttributes=CompletionEventAttributes.of(event, replay=replay).sns(),
        )
        return str(response["MessageId"])
