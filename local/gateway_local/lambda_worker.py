"""One function's sandbox: a process that imports its handler as Lambda does and runs invocations.

Started by :class:`gateway_local.lambda_runtime.IsolatedLambdas` with the function's own environment (its
template entry, the variables Lambda sets, its own credentials) and nothing else, so a variable or a
permission missing from the function's template entry fails here as it fails in AWS. Standard library only:
what the handler imports is what its layer and the runtime provide.

Protocol: one JSON line in (``{"event": ..., "timeout_ms": ...}``) on stdin, one JSON line out
(``{"payload": str, "errored": bool, "logs": str}``) on the stdout the process started with. The handler's
own stdout (EMF metrics, prints) goes to stderr, like everything else it logs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, timeout_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("GATEWAY_LOCAL_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error(error_type: str, message: str, trace: str = "") -> dict[str, Any]:
    payload: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if trace:
        payload["stackTrace"] = trace.splitlines()
    return {"payload": json.dumps(payload), "errored": True, "logs": trace}


def load_handler(code_dir: str, handler: str) -> Any:
    """Import ``module.attribute`` from the function's directory, first on the path as ``/var/task`` is."""
    module_path, _, attribute = handler.rpartition(".")
    sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(module_path)
    except Exception as exc:
        traceback.print_exc()
        raise LookupError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {exc}"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise LookupError(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_path}'"
        )
    return function


def invoke(handler: Any, event: Any, timeout_ms: int) -> dict[str, Any]:
    try:
        result = handler(event, LambdaContext(timeout_ms))
    except Exception as exc:
        trace = traceback.format_exc()
        print(f"{os.environ['AWS_LAMBDA_FUNCTION_NAME']} failed: {trace.rstrip()}", file=sys.stderr)
        return error(type(exc).__name__, str(exc), trace)
    try:
        return {"payload": json.dumps(result), "errored": False, "logs": ""}
    except (TypeError, ValueError) as exc:  # what the Python runtime reports for e.g. a Decimal
        return error("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def main() -> None:
    code_dir, handler_name = sys.argv[1], sys.argv[2]
    # The protocol keeps the stdout we started with; the handler's prints and EMF lines go to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # started by file name: this package's modules are not the function's
    handler: Any = None
    init_error: dict[str, Any] | None = None
    try:
        handler = load_handler(code_dir, handler_name)
    except LookupError as exc:
        init_error = error(exc.args[0], exc.args[1])
    for line in sys.stdin:
        request = json.loads(line)
        reply = init_error or invoke(handler, request["event"], request["timeout_ms"])
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
