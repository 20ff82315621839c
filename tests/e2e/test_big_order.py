"""A 500-item order (2,000 result files) through the whole local stack, as a client would send it.

Its own stack: the fake Planet's rate limits are off and so is the function's pacing (with Planet's 5
downloads per second, 2,000 files take 400 s however they are landed; the shared stack keeps the limits).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gateway_local.readiness import RunningStack
from stack_process import running_stack

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 500
TERMINAL = {"success", "partial", "failed", "cancelled"}


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("big-order-stack"),
        FAKE_PLANET_QUEUED_SECONDS="0.5",
        FAKE_PLANET_FILE_SIZE="2048",
        FAKE_PLANET_RATE_LIMITS="false",
        DOWNLOAD_REQUESTS_PER_SECOND="0",
        LOCAL_LOG_LEVEL="WARNING",
    ) as stack:
        yield stack


def completion_events(stack: RunningStack, timeout: float = 30) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = stack.outputs["completion_events_queue_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if got.get("Messages"):
            return [json.loads(m["Body"]) for m in got["Messages"]]
    return []


def test_order_of_500_items_lands_2000_verified_files_and_publishes_one_small_event(
    big_stack: RunningStack,
) -> None:
    api = big_stack.api_url
    headers = {"Authorization": f"api-key {big_stack.outputs['api_key']}"}
    item_ids = [f"20220304_0933{i:04d}_37_2430" for i in range(ITEMS)]
    request = {
        "name": "five hundred scenes",
        "source_type": "scenes",
        "products": [{"item_ids": item_ids, "item_type": "PSScene", "product_bundle": "analytic_udm2"}],
    }

    created = requests.post(f"{api}/orders/v2", json=request, headers=headers, timeout=30)
    assert created.status_code == 202, created.text
    order_id = created.json()["id"]
    deadline = time.monotonic() + 240
    while (order := requests.get(f"{api}/orders/v2/{order_id}", headers=headers, timeout=60).json())[
        "state"
    ] not in TERMINAL:
        assert time.monotonic() < deadline, f"order still {order['state']}: {order.get('last_message')}"
        time.sleep(2)

    assert order["state"] == "success", order.get("error_hints")
    s3 = big_stack.client("s3")
    bucket = big_stack.outputs["stack_outputs"]["ResultsBucketName"]
    prefix = f"orders/default/{order_id}/"
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    stac = [key for key in keys if key.startswith(prefix + "stac/")]
    assert len(keys) - len(stac) == ITEMS * 4 + 2  # four files per scene, manifest.json, delivery.json
    assert len(stac) == ITEMS + 1  # the STAC catalog and one Item per scene
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    delivery = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "delivery.json")["Body"].read())
    expected = {
        (f["path"], f["size"], f["digests"]["md5"], f["digests"]["sha256"]) for f in manifest["files"]
    }
    assert {(f["path"], f["size"], f["md5"], f["sha256"]) for f in delivery["files"]} == expected
    assert len(expected) == ITEMS * 4

    (envelope,) = completion_events(big_stack)
    assert len(envelope["Message"].encode()) < 4096  # the file list is in delivery.json, not in the event
    event = json.loads(envelope["Message"])
    assert (event["state"], event["files"], event["delivery"]["key"]) == (
        "success",
        ITEMS * 4,
        prefix + "delivery.json",
    )
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes["state"] == "success"
    assert attributes["source_type"] == "scenes"
    assert attributes["tenant"] == "default"
