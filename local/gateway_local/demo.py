"""`make demo`: the seed document's orders through the whole local service, end to end.

Starts the local stack in this process, sends the five create examples of Planet's Orders API document over
HTTP (and the document's malformed original, which must get a clear 400) plus one direct-download order as
an SQS message, follows every order to a terminal state, then shows what landed in S3 and the completion
events. Exits non-zero if any order did not end as expected or a landed file does not match its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .stack import PROJECT_ROOT, LocalStack

SEED = PROJECT_ROOT / "events" / "planet"
TERMINAL = {"success", "partial", "failed", "cancelled"}
TIMEOUT_SECONDS = 180


@dataclass
class DemoOrder:
    label: str
    order_id: str
    lands_files: bool
    state: str = "queued"
    last_message: str = ""


_REPORT = sys.stdout


def _print(text: str = "") -> None:
    print(text, file=_REPORT, flush=True)


def main() -> int:
    log_path = Path(os.environ.get("LOCAL_STACK_STATE_DIR", PROJECT_ROOT / ".local-stack")) / "demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _print(f"Starting the local stack (service logs: {log_path}) ...")
    global _REPORT
    _REPORT = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    with log_path.open("w") as log:
        # What the servers and handlers write (logs, EMF metrics) goes to the log; the report keeps stdout.
        sys.stdout.flush()
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
        code = run()
    if code:
        _print(f"See {log_path} for the service's own logs.")
    return code


def run() -> int:
    with LocalStack.from_env() as stack:
        outputs = stack.outputs
        api = outputs["api_url"]
        session = requests.Session()
        session.headers["Authorization"] = f"api-key {outputs['api_key']}"
        _print(
            f"Local stack ready: API {api}, AWS {outputs['aws_endpoint']}, "
            f"fake Planet {outputs['planet_url']}"
        )
        _print()

        orders = _submit_all(stack, session, api)
        if orders is None:
            return 1
        _print()
        _follow(session, api, orders)
        _print()
        problems = _show_landed(stack, session, api, orders)
        _print()
        problems += _show_events(stack, orders)
        _print()
        if problems:
            _print("DEMO FAILED:")
            for problem in problems:
                _print(f"  - {problem}")
            return 1
        _print(
            f"Demo passed: {len(orders)} orders terminal, direct-download files landed and verified, "
            f"one completion event per order."
        )
        return 0


def _submit_all(stack: LocalStack, session: requests.Session, api: str) -> list[DemoOrder] | None:
    _print("Planet's own malformed example (scenes, GCS delivery, clip):")
    malformed = (SEED / "create_scenes_gcs_clip_malformed.txt").read_text()
    answer = session.post(f"{api}/orders/v2", data=malformed, headers={"Content-Type": "application/json"})
    _print(f"  POST /orders/v2 -> {answer.status_code} {answer.text}")
    if answer.status_code != 400:
        _print("  expected a 400 for malformed JSON")
        return None

    examples = [
        ("scenes, GCS delivery + clip (corrected JSON)", "create_scenes_gcs_clip.json", False),
        ("scenes, direct download", "create_scenes_direct.json", True),
        ("scenes, hosting (sentinel_hub)", "create_scenes_hosting.json", False),
        ("basemaps by geometry, direct download", "create_basemaps_geometry.json", True),
        ("basemaps by quad ids, direct download", "create_basemaps_quads.json", True),
    ]
    orders = []
    for label, filename, lands in examples:
        response = session.post(f"{api}/orders/v2", json=json.loads((SEED / filename).read_text()))
        if response.status_code != 202:
            _print(f"  {label}: POST answered {response.status_code} {response.text}")
            return None
        body = response.json()
        _print(f"  HTTP {response.status_code}  {body['id']}  {body['state']:<8} {label}")
        orders.append(DemoOrder(label, body["id"], lands))

    request = json.loads((SEED / "create_scenes_direct.json").read_text()) | {
        "name": "scenes order, direct download, via SQS"
    }
    key = f"demo-{uuid.uuid4()}"
    stack.client("sqs").send_message(
        QueueUrl=outputs_ref(stack, "IntakeQueue"),
        MessageBody=json.dumps(request),
        MessageAttributes={"idempotency_key": {"DataType": "String", "StringValue": key}},
    )
    from order_core.services.submit import external_order_id  # after the stack has set the environment

    order_id = external_order_id("default", key)
    _print(f"  SQS message  {order_id}  queued   scenes, direct download (sent to the intake queue)")
    orders.append(DemoOrder("scenes, direct download, via SQS", order_id, True))
    return orders


def outputs_ref(stack: LocalStack, logical_id: str) -> str:
    return str(stack.outputs["resources"][logical_id]["Ref"])


def _follow(session: requests.Session, api: str, orders: list[DemoOrder]) -> None:
    _print("Following every order until it is terminal:")
    started = time.monotonic()
    while any(o.state not in TERMINAL for o in orders):
        if time.monotonic() - started > TIMEOUT_SECONDS:
            _print(f"  gave up after {TIMEOUT_SECONDS} s")
            return
        for order in orders:
            if order.state in TERMINAL:
                continue
            response = session.get(f"{api}/orders/v2/{order.order_id}")
            if response.status_code != 200:
                continue  # the SQS order is recorded once the submitter has picked it up
            body = response.json()
            if (body["state"], body["last_message"]) != (order.state, order.last_message):
                order.state, order.last_message = body["state"], body["last_message"]
                _print(
                    f"  {time.monotonic() - started:6.1f}s  {order.order_id[:8]}  {order.state:<9} "
                    f"{order.last_message:<32} {order.label}"
                )
        time.sleep(0.5)


def _show_landed(
    stack: LocalStack, session: requests.Session, api: str, orders: list[DemoOrder]
) -> list[str]:
    problems = []
    s3 = stack.client("s3")
    bucket = outputs_ref(stack, "ResultsBucket")
    _print(f"Landed in s3://{bucket} (size, md5 from the manifest, verified on the way in):")
    for order in orders:
        if order.state != "success":
            problems.append(f"{order.label}: ended {order.state}, expected success")
            continue
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"orders/default/{order.order_id}/").get(
            "Contents", []
        )
        if not order.lands_files:
            _print(f"  {order.order_id[:8]}  delivered by Planet itself, nothing to land  ({order.label})")
            continue
        if not listed:
            problems.append(f"{order.label}: nothing landed")
            continue
        for item in listed:
            meta = s3.head_object(Bucket=bucket, Key=item["Key"])["Metadata"]
            _print(f"  {item['Size']:>9}  {meta.get('md5', '(no digest: written by us)'):<32}  {item['Key']}")
        problems += _check_downloads(session, api, order)
    return problems


def _check_downloads(session: requests.Session, api: str, order: DemoOrder) -> list[str]:
    """Download every result through its location (a plain GET) and compare with the landed manifest."""
    body = session.get(f"{api}/orders/v2/{order.order_id}").json()
    results = body["_links"].get("results", [])
    fetched = {r["name"].split("/", 1)[1]: requests.get(r["location"], timeout=30).content for r in results}
    manifest = json.loads(fetched.get("manifest.json", b"{}") or b"{}")
    problems = []
    for entry in manifest.get("files", []):
        data = fetched.get(entry["path"])
        if data is None or hashlib.md5(data).hexdigest() != entry["digests"]["md5"]:  # noqa: S324 - checksum
            problems.append(f"{order.label}: {entry['path']} downloaded through its location does not match")
    if not manifest.get("files"):
        problems.append(f"{order.label}: no manifest.json among the results")
    return problems


def _show_events(stack: LocalStack, orders: list[DemoOrder]) -> list[str]:
    sqs = stack.client("sqs")
    url = stack.outputs["completion_events_queue_url"]
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(events) < len(orders) and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            events.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    _print(f"SNS completion events received ({len(events)}):")
    for event in events:
        _print(
            f"  {event['order_id'][:8]}  {event['state']:<8} files={event['files']:<3} "
            f"bytes={event['bytes']:<9} "
            f"{event['name']}"
        )
    per_order = {o.order_id: sum(1 for e in events if e["order_id"] == o.order_id) for o in orders}
    return [
        f"{o.label}: {per_order[o.order_id]} completion events, expected 1"
        for o in orders
        if per_order[o.order_id] != 1
    ]


if __name__ == "__main__":
    sys.exit(main())
