"""Stop the local stack while orders sit in every phase, start it again on the same state: every order ends
in exactly one terminal state, with exactly one completion event, one upstream order and nothing landed twice.

The phases at the stop are made, not hoped for:

- polling: the fake Planet runs that order for 40 s;
- submitting: its POST reaches Planet but the answer is cut off (a truncate fault), and every listing the
  submit path would reconcile with fails (503), so the record stays "submitting" with Planet holding it;
- landing: a big order (64 MiB files), stopped once the gateway says "Landing results";
- accepted: an order created just before the kill (the API answers 202 only once it is on disk);
- one order finished before the stop, whose files and event must not come twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from gateway_local.readiness import RunningStack
from stack_process import ROOT, _free_ports, _wait_until_ready, new_key

TERMINAL = {"success", "partial", "failed", "cancelled"}
SEED = ROOT / "events" / "planet" / "create_scenes_direct.json"
_ENV = {
    "FAKE_PLANET_QUEUED_SECONDS": "1",
    "FAKE_PLANET_RUNNING_SECONDS": "1",
    "FAKE_PLANET_FILE_SIZE": "65536",
    "LOCAL_QUEUE_VISIBILITY_TIMEOUT": "2",
    "TZ": "UTC",
    "PYTHONUNBUFFERED": "1",
}


@contextmanager
def stack_process(
    state_dir: Path, ports: list[int], run: int
) -> Iterator[tuple[subprocess.Popen[bytes], RunningStack]]:
    """`python -m gateway_local up` on fixed ports and state; the caller stops it (or kills it)."""
    log_path = state_dir / f"stack-{run}.log"
    env = {
        **os.environ,
        **_ENV,
        "API_PORT": str(ports[0]),
        "AWS_PORT": str(ports[1]),
        "PLANET_PORT": str(ports[2]),
        "LOCAL_STACK_STATE_DIR": str(state_dir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway_local", "up"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        outputs = _wait_until_ready(process, state_dir, log_path)
        yield process, RunningStack(outputs, state_dir, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Client:
    def __init__(self, stack: RunningStack, key: str | None = None) -> None:
        self.api = stack.api_url
        self.planet = stack.outputs["ports"]["planet"]
        self.headers = {"Authorization": f"api-key {key or stack.outputs['api_key']}"}

    def create(self, name: str, idempotency_key: str | None = None, **changes: Any) -> str:
        body = json.loads(SEED.read_text()) | {"name": name} | changes
        headers = dict(self.headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        created = requests.post(f"{self.api}/orders/v2", json=body, headers=headers, timeout=60)
        assert created.status_code == 202, created.text
        return str(created.json()["id"])

    def get(self, order_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.api}/orders/v2/{order_id}", headers=self.headers, timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, order_id: str, done: Any, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not done(order := self.get(order_id)):
            assert time.monotonic() < deadline, f"{order_id}: still {order['state']} {order['last_message']}"
            time.sleep(0.2)
        return order

    def fake(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"http://127.0.0.1:{self.planet}/_fake{path}", timeout=30, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None


def completion_events(stack: RunningStack) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = stack.outputs["completion_events_queue_url"]
    events = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in got:
            events.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return events


def repairs_in_log(stack: RunningStack) -> dict[str, str]:
    """order id → the phase the reconciler found it stranded in, from the stack's log."""
    found = {}
    assert stack.log_path is not None
    for line in stack.log_path.read_text(errors="replace").splitlines():
        if '"stranded order restarted"' in line:
            entry = json.loads(line[line.index("{") :])
            found[entry["order_id"]] = entry["phase"]
    return found


def _landing(order: dict[str, Any]) -> bool:
    message = order.get("last_message") or ""
    return message == "Landing results" or message.startswith("Landed ")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_restart_with_orders_in_every_phase_ends_each_once(tmp_path: Path, stop: signal.Signals) -> None:
    ports = _free_ports(3)
    orders: dict[str, str] = {}
    with stack_process(tmp_path, ports, 1) as (process, stack):
        client = Client(stack)
        extra_key = new_key(stack, "acme")

        orders["done"] = client.create("finished before the stop", idempotency_key="restart-done")
        client.wait(orders["done"], lambda o: o["state"] in TERMINAL)

        client.fake("POST", "/config", json={"running_seconds": 40})
        orders["polling"] = client.create("running at Planet for 40 s")
        client.wait(orders["polling"], lambda o: o["state"] == "running")
        client.fake("POST", "/config", json={"running_seconds": 1})

        client.fake("POST", "/faults", json={"op": "create", "kind": "truncate"})
        client.fake("POST", "/faults", json={"op": "list", "kind": "status", "status": 503, "times": 1000})
        orders["submitting"] = client.create("its answer was cut off")
        marker = f"[gw:{orders['submitting']}]"
        deadline = time.monotonic() + 60
        while not any(marker in o["name"] for o in client.fake("GET", "/orders")["orders"]):
            assert time.monotonic() < deadline, "the cut-off POST never reached the fake"
            time.sleep(0.2)

        client.fake("POST", "/config", json={"file_size": 64 * 1024 * 1024})
        orders["landing"] = client.create("big files")
        # Polling says "Landing results"; landing then reports its progress ("Landed N files") while running.
        client.wait(orders["landing"], lambda o: o["state"] == "running" and _landing(o), timeout=180)
        client.fake("POST", "/config", json={"file_size": 65536})

        orders["accepted"] = client.create("created just before the stop")
        process.send_signal(stop)
        process.wait(timeout=60)
        stopped_at = datetime.now(UTC)

    with stack_process(tmp_path, ports, 2) as (_, stack):
        summary = stack.outputs["reconciled"]
        repaired = repairs_in_log(stack)
        print(f"\n{stop.name}: {summary}; by order: {repaired}")
        assert orders["done"] not in repaired
        if stop is signal.SIGKILL:  # a kill freezes every order where it was
            assert repaired.get(orders["polling"]) == "polling", summary
            assert repaired.get(orders["submitting"]) == "submitting", summary
            assert repaired.get(orders["landing"]) == "landing", summary
        # A Ctrl-C lets in-flight work finish first, so orders may have moved on before the stop.

        client = Client(stack)
        final = {
            name: client.wait(order_id, lambda o: o["state"] in TERMINAL, timeout=240)
            for name, order_id in orders.items()
        }
        assert {name: order["state"] for name, order in final.items()} == dict.fromkeys(orders, "success")

        events = Counter(event["order_id"] for event in completion_events(stack))
        assert {name: events[order_id] for name, order_id in orders.items()} == dict.fromkeys(orders, 1)

        upstream: dict[str, list[str]] = {}
        for o in client.fake("GET", "/orders")["orders"]:
            if match := re.search(r"\[gw:([0-9a-f-]+)\]$", o["name"]):
                upstream.setdefault(match.group(1), []).append(o["id"])
        assert {name: len(upstream.get(order_id, [])) for name, order_id in orders.items()} == dict.fromkeys(
            orders, 1
        )

        # Nothing landed twice: every manifest file is one object, and no file that had landed before the
        # stop was downloaded again after it.
        s3 = stack.client("s3")
        bucket = stack.outputs["stack_outputs"]["ResultsBucketName"]
        downloaded_again = {  # (Planet's order id, file path) of every download since the restart
            tuple(unquote(r["path"]).split("/", 3)[2:])
            for r in client.fake("GET", "/requests")["requests"]
            if r["op"] == "storage"
        }
        for name, order_id in orders.items():
            prefix = f"orders/default/{order_id}/"
            objects = [
                item
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            ]
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
            # Our STAC catalog (stac/) sits beside Planet's files: it is ours, not in Planet's manifest.
            paths = sorted(k for item in objects if not (k := item["Key"][len(prefix) :]).startswith("stac/"))
            assert paths == sorted(
                [f["path"] for f in manifest["files"]] + ["manifest.json", "delivery.json"]
            )
            files = {f["path"] for f in manifest["files"]}
            (upstream_id,) = upstream[order_id]
            before = {
                (upstream_id, item["Key"][len(prefix) :])
                for item in objects
                if item["LastModified"] < stopped_at and item["Key"][len(prefix) :] in files
            }
            if name == "done":
                assert before, "the finished order's files survived the stop"
            assert not before & downloaded_again, f"{name}: landed again after the restart"

        # Keys, idempotency records and download links survived.
        replay = requests.post(
            f"{stack.api_url}/orders/v2",
            json=json.loads(SEED.read_text()) | {"name": "finished before the stop"},
            headers={**client.headers, "Idempotency-Key": "restart-done"},
            timeout=30,
        )
        assert replay.json()["id"] == orders["done"]
        acme = requests.get(
            f"{stack.api_url}/orders/v2", headers=Client(stack, extra_key).headers, timeout=30
        )
        assert acme.status_code == 200
        location = next(r["location"] for r in final["done"]["_links"]["results"])
        assert requests.get(location, timeout=30).status_code == 200
