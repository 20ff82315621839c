"""``python -m gateway_local up|wait|demo|keys|events|reset``: run the local stack, wait for it, run the
demo against it, administer its API keys, replay a completion event (docs/runbook.md), or forget its saved
state."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Any, TextIO

from .readiness import default_state_dir, not_answering, wait_until_ready

log = logging.getLogger("gateway_local")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "up",
        help="start the local stack in the foreground (ports: API_PORT, AWS_PORT, PLANET_PORT)",
    )
    wait = commands.add_parser("wait", help="wait until a local stack started by `up` answers")
    wait.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    commands.add_parser("demo", help="start the stack in this process and run the seed orders end to end")
    commands.add_parser(
        "reset", help="forget the state `up` keeps between runs (orders, keys, files); refused while it runs"
    )
    keys = commands.add_parser("keys", help="API keys and tenant settings of the running local stack")
    keys.add_argument(
        "keys_args",
        nargs=argparse.REMAINDER,
        help=(
            "create --tenant T | list | revoke KEY_ID | webhook-secret --tenant T | "
            "set-email --tenant T --email E"
        ),
    )
    events = commands.add_parser("events", help="replay a completion event of the running local stack")
    events.add_argument("events_args", nargs=argparse.REMAINDER, help="replay ORDER_ID")
    args = parser.parse_args(argv)
    if args.command == "keys":
        return _keys(args.keys_args)
    if args.command == "reset":
        return _reset()
    if args.command == "events":
        return _admin(["events", *args.events_args])
    if args.command == "wait":
        return _wait(args.timeout)
    if args.command == "demo":
        _configure_logging(default_level="WARNING")
        from .demo import main as run_demo

        return run_demo()
    return _up()


def _keys(arguments: list[str]) -> int:
    """Run order_core's key administration against the running local stack's ApiKeysTable."""
    return _admin(["keys", *arguments])


def _admin(arguments: list[str]) -> int:
    """Run an order_core.admin command against the running local stack's resources."""
    try:
        stack = wait_until_ready(default_state_dir(), timeout=5)
    except TimeoutError:
        print("no local stack is running: start one with `make up`", file=sys.stderr)
        return 1
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": stack.aws_endpoint,
            "AWS_DEFAULT_REGION": str(stack.outputs["region"]),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "API_KEYS_TABLE": stack.resource("ApiKeysTable")["Ref"],
            "ORDERS_TABLE": stack.resource("OrdersTable")["Ref"],
            "COMPLETION_TOPIC_ARN": stack.resource("CompletionTopic")["Ref"],
            "RESULTS_BUCKET": stack.resource("ResultsBucket")["Ref"],
        }
    )
    from order_core.admin import main as admin

    return admin(arguments)


def _reset() -> int:
    from .persistence import remove_state
    from .readiness import read_outputs

    state_dir = default_state_dir()
    if read_outputs(state_dir) is not None:
        print("a local stack is running on this state: stop it first (Ctrl-C)", file=sys.stderr)
        return 1
    if remove_state(state_dir):
        print(f"Forgot the local stack's state in {state_dir}: the next `make up` starts fresh")
    else:
        print(f"No saved state in {state_dir}")
    return 0


def _wait(timeout: float) -> int:
    state_dir = default_state_dir()
    try:
        stack = wait_until_ready(state_dir, timeout)
    except TimeoutError as why:
        print(why, file=sys.stderr)
        return 1
    print(f"Local stack ready: {stack.api_url}")
    return 0


def _configure_logging(default_level: str) -> None:
    from order_core.log_masking import MaskingFormatter

    # Everything that logs through the root logger (the HTTP front, moto, werkzeug, the fake Planet, the
    # in-process Lambda runtime) is masked like the functions' own Powertools logs: no download token,
    # signed URL or key reaches the local log.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    level = os.environ.get("LOCAL_LOG_LEVEL", default_level).upper()
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # werkzeug would log every request to moto, and botocore announces where it found credentials each
    # time a handler creates a client.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # Powertools warns on every invocation that publishes no metric; harmless, and it buries the logs.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _up() -> int:
    _configure_logging(default_level="INFO")
    # The banner goes to stdout; everything the handlers print (Powertools logs, EMF metrics) to stderr.
    # Swapping sys.stdout for the whole process (not per invocation) is safe with handlers on many threads.
    console: TextIO = sys.stdout
    sys.stdout = sys.stderr

    from .stack import LocalStack  # imports moto: not needed by `wait`

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    stack = LocalStack.from_env(persist=True)
    try:
        stack.start()
        silent = not_answering(stack.outputs)
        if silent:
            log.error("started, but these servers do not answer: %s", ", ".join(silent))
            return 1
        print(_banner(stack.outputs, stack.state_dir), file=console, flush=True)
        print("Local stack ready", file=console, flush=True)
        # Never one unbounded wait: the kernel may deliver Ctrl-C to any of the stack's threads, and Python
        # runs the handler only when the main thread wakes (seen: a Ctrl-C ignored until a signal 60 s on).
        while not stop.wait(timeout=0.2):
            pass
    finally:
        stack.stop()
    return 0


_BANNER_RESOURCES = (
    ("bucket", "AWS::S3::Bucket"),
    ("queue", "AWS::SQS::Queue"),
    ("topic", "AWS::SNS::Topic"),
    ("state machine", "AWS::Serverless::StateMachine"),
)


def _banner(outputs: dict[str, Any], state_dir: os.PathLike[str]) -> str:
    resources = outputs["resources"]

    def named(resource_type: str) -> list[tuple[str, dict[str, str]]]:
        return [(rid, attrs) for rid, attrs in resources.items() if attrs["Type"] == resource_type]

    lines = [
        "Planet Orders gateway, local stack",
        f"  API            {outputs['api_url']}   key {outputs['api_key']} (tenant {outputs['tenant']})",
        f"  AWS endpoint   {outputs['aws_endpoint']}   (moto, region {outputs['region']})",
        # The upstream key is never printed (it may be a real Planet key); outputs.json has it.
        f"  fake Planet    {outputs['planet_url']}   (upstream key in outputs.json)",
    ]
    for label, resource_type in _BANNER_RESOURCES:
        lines += [f"  {label:<14} {rid}: {attrs['Ref']}" for rid, attrs in named(resource_type)]
    lines.append(f"  {'queue':<14} completion events (local): {outputs['completion_events_queue_url']}")
    lines.append(f"  outputs        {os.path.join(state_dir, 'outputs.json')}")
    if outputs.get("state_file"):
        restored = outputs.get("restored")
        found = (
            "resumed: " + ", ".join(f"{count} {what}" for what, count in restored.items())
            if restored
            else "nothing saved yet: a fresh start"
        )
        lines.append(f"  state          {outputs['state_file']}   ({found})")
        lines.append("                 kept across restarts; start fresh with `make clean-state`")
        if outputs.get("reconciled"):
            lines.append(f"  reconciler     {outputs['reconciled']}")
    endpoint = outputs["aws_endpoint"]
    for _, attrs in named("AWS::S3::Bucket"):
        lines += [
            "Landed files:",
            "  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \\",
            f"    aws --endpoint-url {endpoint} s3 ls --recursive s3://{attrs['Ref']}",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
