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


#: A restarted workflow runs as ``<order id>-r<n>``: a name cannot be reused for another input for 90 days.
RESTART_SUFFIX = "-r"
MAX_RESTARTS = 99


def order_id_of_execution(name: str) -> str:
    """The order an execution belongs to: its name without a ``-r<n>`` restart suffix."""
    base, sep, number = name.rpartition(RESTART_SUFFIX)
    return base if sep and number.isdigit() else name


class WorkflowExecutions:
    """What the reconciler needs of the workflow: which orders have a running execution, and a restart
    that never leaves two executions running for one order."""

    def __init__(self, state_machine_arn: str, sfn: Any = None) -> None:
        self._arn = state_machine_arn
        self._sfn = sfn

    @property
    def sfn(self) -> Any:
        if self._sfn is None:
            self._sfn = client("stepfunctions")
        return self._sfn

    def running_order_ids(self) -> set[str]:
        """Orders with a RUNNING execution (original or restarted)."""
        running: set[str] = set()
        kwargs: dict[str, Any] = {"stateMachineArn": self._arn, "statusFilter": "RUNNING", "maxResults": 1000}
        while True:
            page = self.sfn.list_executions(**kwargs)
            running.update(order_id_of_execution(e["name"]) for e in page.get("executions", []))
            if not page.get("nextToken"):
                return running
            kwargs["nextToken"] = page["nextToken"]

    def _execution_arn(self, name: str) -> str:
        return self._arn.replace(":stateMachine:", ":execution:", 1) + ":" + name

    def restart(self, workflow_input: WorkflowInput) -> str | None:
        """Start the order's workflow under the first name not used yet (``<id>``, ``<id>-r1``, ...).

        Returns the name started, or None when an execution of the order is running (or another
        reconciler started the same name first): an order never gets two live workflows from here.
        """
        order_id = workflow_input.order_id
        for number in range(MAX_RESTARTS + 1):
            name = order_id if number == 0 else f"{order_id}{RESTART_SUFFIX}{number}"
            try:
                status = self.sfn.describe_execution(executionArn=self._execution_arn(name))["status"]
            except self.sfn.exceptions.ExecutionDoesNotExist:
                try:
                    self.sfn.start_execution(
                        stateMachineArn=self._arn, name=name, input=workflow_input.model_dump_json()
                    )
                except self.sfn.exceptions.ExecutionAlreadyExists:
                    return None
                return name
            if status == "RUNNING":
                return None
        raise RuntimeError(f"order {order_id} was restarted {MAX_RESTARTS} times; not again")


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
