"""Run the project's Lambda handlers in this process, for moto and for the local triggers.

moto's only way to run a function is Docker (``LambdaFunction._invoke_lambda``). We replace that one method
so that every invocation moto makes (Step Functions tasks, ``lambda.invoke``) runs the real handler from the
function's ``CodeUri`` here, and the SQS poller and HTTP front call :meth:`InProcessLambdas.invoke` directly.
Errors come back in Lambda's shape, because Step Functions matches Retry/Catch on ``errorType``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the template declares it, with its environment resolved."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str  # "app.lambda_handler": module path inside code_dir, then the attribute
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...] = field(default=())


@dataclass(frozen=True)
class Invocation:
    """What moto's ``_invoke_lambda`` returns: the payload, whether it is an error, and log text."""

    payload: str
    errored: bool
    logs: str = ""

    def as_moto_result(self) -> tuple[str, bool, str]:
        return self.payload, self.errored, self.logs


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + spec.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessLambdas:
    """Registry of local functions; loads each handler once and invokes it like the Lambda runtime."""

    def __init__(self) -> None:
        self._specs: dict[str, FunctionSpec] = {}
        self._handlers: dict[str, Handler] = {}
        # Lambda never runs two invocations at once in one sandbox, so handlers keep per-invocation state
        # in module globals (Powertools' resolver holds current_event, BatchProcessor its records). In one
        # process that is only safe if each function runs one invocation at a time: a "sandbox" each.
        self._sandboxes: dict[str, threading.Lock] = {}
        self._original_invoke: Callable[..., tuple[str, bool, str]] | None = None

    def add(self, spec: FunctionSpec, handler: Handler | None = None) -> None:
        """Register a function; ``handler`` skips loading from ``code_dir``."""
        self._specs[spec.name] = spec
        self._sandboxes[spec.name] = threading.Lock()
        if handler is not None:
            self._handlers[spec.name] = handler

    @property
    def specs(self) -> list[FunctionSpec]:
        return list(self._specs.values())

    def install(self) -> None:
        """Make moto run registered functions here instead of in Docker (one stack per process)."""
        if self._original_invoke is not None:
            return
        registry = self

        def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            return registry.invoke(function.function_name, event).as_moto_result()

        self._original_invoke = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original_invoke is not None:
            LambdaFunction._invoke_lambda = self._original_invoke  # type: ignore[method-assign]
            self._original_invoke = None

    def invoke(self, function_name: str, event: Any) -> Invocation:
        """Run one invocation; never raises (errors are returned as Lambda reports them)."""
        spec = self._specs.get(function_name)
        if spec is None:
            return _error("ResourceNotFoundException", f"no local handler for function {function_name}")
        if isinstance(event, str | bytes):  # moto passes the raw request body through, "{}" when empty
            event = json.loads(event or "{}")
        with self._sandboxes[spec.name]:
            return self._run(spec, event)

    def _run(self, spec: FunctionSpec, event: Any) -> Invocation:
        try:
            handler = self._handler(spec)
        except _RuntimeError as error:
            log.error("%s: %s: %s", spec.name, error.error_type, error)
            return _error(error.error_type, str(error))
        try:
            result = handler(event, LambdaContext(spec))
        except Exception as error:
            trace = traceback.format_exc()
            log.error("%s failed: %s", spec.name, trace.rstrip())
            return _error(type(error).__name__, str(error), trace)
        try:
            return Invocation(json.dumps(result), errored=False)
        except (TypeError, ValueError) as error:  # what the Python runtime reports for e.g. a Decimal
            log.error("%s returned a value that is not JSON: %s", spec.name, error)
            return _error("Runtime.MarshalError", f"Unable to marshal response: {error}")

    def _handler(self, spec: FunctionSpec) -> Handler:
        """The handler, imported on first use (the caller holds the function's lock)."""
        if spec.name not in self._handlers:
            self._handlers[spec.name] = _load_handler(spec)
        return self._handlers[spec.name]


class _RuntimeError(Exception):
    """A failure the Lambda runtime itself reports (its errorType is not an exception class name)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _error(error_type: str, message: str, trace: str = "") -> Invocation:
    payload = {"errorType": error_type, "errorMessage": message}
    if trace:
        payload["stackTrace"] = trace.splitlines()  # type: ignore[assignment]
    return Invocation(json.dumps(payload), errored=True, logs=trace)


def _load_handler(spec: FunctionSpec) -> Handler:
    module_path, _, attribute = spec.handler.rpartition(".")
    for layer_dir in spec.layer_dirs:  # what Lambda puts on the path from /opt
        if str(layer_dir) not in sys.path:
            sys.path.append(str(layer_dir))
    module = _import_file(spec, module_path)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        message = f"Handler '{attribute}' missing on module '{module_path}'"
        raise _RuntimeError("Runtime.HandlerNotFound", message)
    return handler


def _import_file(spec: FunctionSpec, module_path: str) -> ModuleType:
    relative = Path(*module_path.split("."))
    candidates = [spec.code_dir / relative.with_suffix(".py"), spec.code_dir / relative / "__init__.py"]
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        message = f"Unable to import module '{module_path}': no {relative}.py in {spec.code_dir}"
        raise _RuntimeError("Runtime.ImportModuleError", message)
    # Every function's entry module is called app.py: give each its own name so they don't replace each
    # other in sys.modules (which pydantic and dataclasses consult to resolve annotations).
    unique_name = f"gateway_local_fn_{spec.logical_id}_{module_path.replace('.', '_')}"
    module_spec = importlib.util.spec_from_file_location(unique_name, source)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[unique_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[unique_name]
        log.error("%s: importing %s failed: %s", spec.name, source, traceback.format_exc().rstrip())
        raise _RuntimeError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_path}': {error}"
        ) from error
    return module
