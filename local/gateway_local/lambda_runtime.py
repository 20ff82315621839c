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
import os
import select
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
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


# --- one process per function ------------------------------------------------------------------------------

WORKER = Path(__file__).with_name("lambda_worker.py")


class IsolatedLambdas(InProcessLambdas):
    """Each function in its own process (``lambda_worker.py``), with only the environment Lambda gives it.

    What its template entry declares (Globals merged), what Lambda sets (``AWS_REGION``,
    ``AWS_LAMBDA_FUNCTION_NAME``, ... and the credentials of its own execution role), and the local runtime's
    plumbing (``runtime_environment``: the AWS endpoint, settings the local stack adds such as
    ``POWERTOOLS_TRACE_DISABLED``). Nothing of the developer's shell or of the other functions: a variable
    missing from a function's entry is missing here too. One invocation at a time per function, as in a
    Lambda sandbox; a timed-out or crashed sandbox is replaced on the next invocation.
    """

    def __init__(self, runtime_environment: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.runtime_environment: dict[str, str] = dict(runtime_environment or {})
        # Per function: the access key pair its AWS calls are signed with (its execution role's, locally).
        self.credentials: dict[str, dict[str, str]] = {}
        self._workers: dict[str, subprocess.Popen[str]] = {}

    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The whole environment the function's process starts with."""
        environment = {key: os.environ[key] for key in ("PATH", "LANG", "TZ", "HOME") if key in os.environ}
        environment.update(self.runtime_environment)
        environment.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "GATEWAY_LOCAL_FUNCTION_ARN": spec.arn,
                "PYTHONPATH": os.pathsep.join(str(layer) for layer in spec.layer_dirs),
                "PYTHONUNBUFFERED": "1",
            }
        )
        environment.update(self.credentials.get(spec.name, {}))
        environment.update(spec.environment)
        return environment

    def _run(self, spec: FunctionSpec, event: Any) -> Invocation:
        if spec.name in self._handlers:  # a handler given to add(): in this process
            return super()._run(spec, event)
        worker = self._worker(spec)
        assert worker.stdin is not None and worker.stdout is not None
        request = {"event": event, "timeout_ms": spec.timeout_seconds * 1000}
        try:
            worker.stdin.write(json.dumps(request) + "\n")
            worker.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._lost(spec, "Runtime.ExitError", "the function's process exited")
        ready, _, _ = select.select([worker.stdout], [], [], spec.timeout_seconds + 1)
        if not ready:
            return self._lost(
                spec, "Sandbox.Timedout", f"Task timed out after {spec.timeout_seconds}.00 seconds"
            )
        line = worker.stdout.readline()
        if not line:
            return self._lost(spec, "Runtime.ExitError", "the function's process exited")
        reply = json.loads(line)
        return Invocation(reply["payload"], errored=reply["errored"], logs=reply.get("logs", ""))

    def _worker(self, spec: FunctionSpec) -> subprocess.Popen[str]:
        worker = self._workers.get(spec.name)
        if worker is None or worker.poll() is not None:
            worker = subprocess.Popen(  # noqa: S603 - this interpreter, our worker, the template's handler
                [sys.executable, str(WORKER), str(spec.code_dir), spec.handler],
                env=self.environment(spec),
                cwd=spec.code_dir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self._workers[spec.name] = worker
        return worker

    def _lost(self, spec: FunctionSpec, error_type: str, message: str) -> Invocation:
        log.error("%s: %s", spec.name, message)
        self._stop_worker(spec.name)
        return _error(error_type, message)

    def _stop_worker(self, name: str) -> None:
        worker = self._workers.pop(name, None)
        if worker is None:
            return
        if worker.stdin is not None:
            worker.stdin.close()
        try:
            worker.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()

    def uninstall(self) -> None:
        super().uninstall()
        for name in list(self._workers):
            with self._sandboxes[name]:
                self._stop_worker(name)
