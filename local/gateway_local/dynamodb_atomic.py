"""One DynamoDB request at a time in the local stack's moto, as DynamoDB applies each write to an item.

DynamoDB evaluates a conditional write and applies it atomically. moto evaluates the condition in Python
and then writes, with no lock, and its server answers each request in its own thread: two functions racing
for one item (two finalizers claiming the completion event, two callers booking the same Planet request
slot) could both pass the same condition locally, which never happens in AWS. One lock around each
DynamoDB request gives the guarantee back. Local only: nothing here runs in AWS.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["serialise_requests"]

_lock = threading.RLock()


def serialise_requests() -> None:
    """Make moto handle each DynamoDB request whole before the next. Idempotent."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "serialised", False):
        return

    def serialised(self: DynamoHandler) -> Any:
        with _lock:
            return original(self)

    serialised.serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialised  # type: ignore[method-assign]
