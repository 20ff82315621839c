"""The local stack paces its Planet requests through FleetTable, under each function's own IAM role.

Only the local stack runs each function with its template role enforced: a function that calls Planet
without a policy on FleetTable would still work, unpaced, with a warning. This proves the policies and the
wiring together: one order's create, polls and downloads took slots, and no function sent unpaced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import requests
from test_order_over_http import wait_for_terminal

SEED = Path(__file__).resolve().parents[2] / "events" / "planet"


def test_local_stack_order_takes_fleet_slots_for_every_planet_endpoint_it_uses(local_stack: Any) -> None:
    api = local_stack.api_url
    headers = {"Authorization": f"api-key {local_stack.outputs['api_key']}"}
    request = json.loads((SEED / "create_scenes_direct.json").read_text())

    created = requests.post(f"{api}/orders/v2", json=request, headers=headers, timeout=10)
    assert created.status_code == 202, created.text
    order = wait_for_terminal(api, headers, created.json()["id"])

    assert order["state"] == "success", order
    table = local_stack.resource("FleetTable")["Ref"]
    items = local_stack.client("dynamodb").scan(TableName=table)["Items"]
    keys = {item["pk"]["S"] for item in items if item["pk"]["S"].startswith("pace#")}
    endpoints = {key.rsplit("#", 1)[1] for key in keys}
    # spec: ApiFunction checked the order against Planet's bundles spec; create: Submit; get: Poll and
    # Finalize; download: Finalize's landing.
    assert {"spec", "create", "get", "download"} <= endpoints, keys
    scopes = {key.split("#")[1] for key in keys}
    assert len(scopes) == 1  # one key, one pace
    (scope,) = scopes
    assert len(scope) == 12 and all(c in "0123456789abcdef" for c in scope)
    log = local_stack.log_path.read_text(encoding="utf-8", errors="replace") if local_stack.log_path else ""
    assert "sent unpaced" not in log and "paced by this process only" not in log
    assert hashlib.sha256(b"").hexdigest()[:12] != scope  # a fingerprint of a real key, not of nothing
