"""Child process of the landing benchmarks: FinalizeFunction's ``land`` action, called until complete.

    python benchmarks/_land_child.py <order id> <tenant> <result.json>

As the state machine does it: ``LandResults`` invokes the handler, and invokes it again while it answers
``complete: false``. The context gives the function Lambda's 15 minutes. Writes the time spent in the
handler and this process's peak RSS (``ru_maxrss``) to <result.json>.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Context:
    function_name = "FinalizeFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:FinalizeFunction"
    memory_limit_in_mb = 1769
    aws_request_id = "benchmark"
    log_group_name = "/aws/lambda/FinalizeFunction"
    log_stream_name = "benchmark"

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def main() -> None:
    order_id, tenant, result_file = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("finalize_app", ROOT / "functions" / "finalize" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    invocations = 0
    while True:
        invocations += 1
        answer = module.lambda_handler(
            {"action": "land", "order_id": order_id, "tenant": tenant}, Context(900)
        )
        if answer["complete"]:
            break
    handler_seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from order_core import wiring

    peak_buffers = wiring.landing_service().peak_buffer_bytes
    Path(result_file).write_text(
        json.dumps(
            {
                "handler_seconds": handler_seconds,
                "invocations": invocations,
                "landed_files": answer["landed_files"],
                "peak_rss_mb": peak_kib * 1024 / 1e6,
                "peak_buffer_mb": peak_buffers / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
