"""A user's first order, over HTTP against the running local stack (as `make up` serves it)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import requests

SEED = Path(__file__).resolve().parents[2] / "events" / "planet"


def wait_for_terminal(
    api: str, headers: dict[str, str], order_id: str, timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = requests.get(f"{api}/orders/v2/{order_id}", headers=headers, timeout=10).json()
        if order["state"] in ("success", "partial", "failed", "cancelled"):
            return order
        time.sleep(0.5)
    raise AssertionError(f"order {order_id} not terminal after {timeout} s")


def test_scenes_order_posted_over_http_lands_files_whose_md5_matches_the_manifest(local_stack: Any) -> None:
    api = local_stack.api_url
    headers = {"Authorization": f"api-key {local_stack.outputs['api_key']}"}
    request = json.loads((SEED / "create_scenes_direct.json").read_text())

    created = requests.post(f"{api}/orders/v2", json=request, headers=headers, timeout=10)
    assert created.status_code == 202, created.text
    order = wait_for_terminal(api, headers, created.json()["id"])

    assert order["state"] == "success", order
    results = {r["name"].split("/", 1)[1]: r["location"] for r in order["_links"]["results"]}
    manifest = requests.get(results["manifest.json"], timeout=10).json()
    assert manifest["files"], "the manifest lists the order's files"
    for entry in manifest["files"]:
        body = requests.get(results[entry["path"]], timeout=30)  # a plain GET; the redirect is followed
        assert body.status_code == 200
        assert len(body.content) == entry["size"]
        assert hashlib.md5(body.content).hexdigest() == entry["digests"]["md5"]  # noqa: S324 - checksum


def test_malformed_seed_example_gets_a_planet_shaped_400(local_stack: Any) -> None:
    body = (SEED / "create_scenes_gcs_clip_malformed.txt").read_text()
    response = requests.post(
        f"{local_stack.api_url}/orders/v2",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"api-key {local_stack.outputs['api_key']}",
        },
    )

    assert response.status_code == 400
    assert response.json()["general"][0]["message"].startswith("Request body is not valid JSON")
