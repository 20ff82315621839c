"""Emulate Lambda's SQS event source mapping.

moto has its own SQS → Lambda trigger, but it invokes synchronously inside ``SendMessage``, one record per
invocation, and ignores ``batchItemFailures``. Lambda instead long-polls, hands the function batches of up to
``BatchSize`` records and, with ``ReportBatchItemFailures``, deletes only the records not reported failed; the
others reappear after their visibility timeout and go to the dead-letter queue after ``maxReceiveCount``
receives (moto's SQS does that part itself, see ``tests/e2e/test_local_stack_smoke.py``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .lambda_runtime import Invocation

log = logging.getLogger(__name__)

Invoke = Callable[[str, Any], Invocation]

_RECEIVE_WAIT_SECONDS = 1  # short long-poll so stop() returns within about a second


@dataclass(frozen=True)
class SqsSource:
    """One ``Events`` entry of ``Type: SQS``, resolved."""

    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


class SqsPoller:
    """Long-polls one queue on behalf of one function, in one thread.

    One batch at a time: the in-process runner runs one invocation per function at a time anyway, which
    also respects any ``ScalingConfig.MaximumConcurrency``.
    """

    def __init__(self, source: SqsSource, sqs: Any, invoke: Invoke, region: str) -> None:
        self.source = source
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        name = f"esm-{self.source.function_name}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_RECEIVE_WAIT_SECONDS + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():  # the AWS endpoint went away during shutdown
                    return
                log.exception("polling %s failed; retrying", self.source.queue_url)
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive one batch, invoke the function with it, delete what succeeded. Returns the batch size."""
        response = self._sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, 10),
            WaitTimeSeconds=_RECEIVE_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        arn = self.source.queue_arn
        event = {"Records": [lambda_sqs_record(message, arn, self._region) for message in messages]}
        result = self._invoke(self.source.function_name, event)
        to_delete = self._succeeded(messages, result)
        if to_delete:
            self._sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(to_delete)
                ],
            )
        queue_name = self.source.queue_arn.rsplit(":", 1)[-1]
        if result.errored:
            log.warning(
                "%s: batch of %d from %s failed (%.300s); the messages return after their visibility timeout",
                self.source.function_name,
                len(messages),
                queue_name,
                result.payload,
            )
        else:
            log.info(
                "%s: batch of %d from %s, %d failed",
                self.source.function_name,
                len(messages),
                queue_name,
                len(messages) - len(to_delete),
            )
        return len(messages)

    def _succeeded(self, messages: list[dict[str, Any]], result: Invocation) -> list[dict[str, Any]]:
        """The messages Lambda would delete after this invocation."""
        if result.errored:
            return []
        if not self.source.report_batch_item_failures:
            return messages
        try:
            response = json.loads(result.payload)
        except ValueError:
            response = None
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:  # None, [] or a response without the key all mean "everything succeeded"
            return messages
        batch_ids = {message["MessageId"] for message in messages}
        failed_ids = {failure.get("itemIdentifier") for failure in failures if isinstance(failure, dict)}
        if len(failed_ids) != len(failures) or not failed_ids <= batch_ids:
            # Lambda treats a malformed or unknown itemIdentifier as a failure of the whole batch.
            log.warning("%s: invalid batchItemFailures %s", self.source.function_name, failures)
            return []
        return [message for message in messages if message["MessageId"] not in failed_ids]


def lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A message as ``ReceiveMessage`` returns it → one record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API shape (``StringValue``, binary as bytes) → the Lambda event shape (camelCase, base64)."""
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute
