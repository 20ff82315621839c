"""Step Functions task tokens: ending a workflow's wait for a change (services/wake.py)."""

from __future__ import annotations

import json
from typing import Any

from order_core.adapters.aws import client

#: What Step Functions answers for a token whose wait is over (ended, timed out, or the execution stopped).
_GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})


class TaskTokens:
    def __init__(self, sfn: Any = None) -> None:
        self._sfn = sfn

    @property
    def sfn(self) -> Any:
        if self._sfn is None:
            self._sfn = client("stepfunctions")
        return self._sfn

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """End the wait of ``task_token`` with ``output``; False if that wait is already over."""
        from botocore.exceptions import ClientError

        try:
            self.sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _GONE:
                return False
            raise
        return True
