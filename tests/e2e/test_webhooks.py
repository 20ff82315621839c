"""A tenant's notifications over the local stack: the gateway calls a receiver on 127.0.0.1 once, signed,
with its own order id and links, emails the tenant's address (moto's SES), and Planet sees neither."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from order_core.services.notify import verify_signature
from webhook_receiver import Receiver, running_receiver

SEED = Path(__file__).resolve().parents[2] / "events" / "planet"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver("/hooks/planet") as server:
        yield server


def keys_command(stack: Any, *args: str) -> str:
    """`python -m gateway_local keys ...`, the way an operator runs it; its standard output."""
    env = {**os.environ, "LOCAL_STACK_STATE_DIR": str(stack.state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway_local", "keys", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_order_with_webhook_and_email_calls_the_receiver_once_signed_emails_the_tenant_planet_sees_neither(
    local_stack: Any, receiver: Receiver
) -> None:
    api = local_stack.api_url
    headers = {"Authorization": f"api-key {local_stack.outputs['api_key']}"}
    tenant = str(local_stack.outputs["tenant"])
    secret = keys_command(local_stack, "webhook-secret", "--tenant", tenant)
    keys_command(local_stack, "set-email", "--tenant", tenant, "--email", "ops@tenant.example.com")
    ses = local_stack.client("ses")
    emails_before = ses.get_send_quota()["SentLast24Hours"]
    request = json.loads((SEED / "create_scenes_direct.json").read_text())
    notifications = {"email": True, "webhook": {"url": receiver.url, "per_order": True}}
    request |= {"name": "webhook e2e", "notifications": notifications}

    created = requests.post(f"{api}/orders/v2", json=request, headers=headers, timeout=10)
    assert created.status_code == 202, created.text
    order_id = created.json()["id"]

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (
        not receiver.calls or ses.get_send_quota()["SentLast24Hours"] == emails_before
    ):
        time.sleep(0.5)
    assert receiver.calls, "the webhook was not called"
    assert ses.get_send_quota()["SentLast24Hours"] == emails_before + 1, "the order's email was not sent"
    # Let any duplicate arrive: the order's GET shows it finished, and the notify queue drains in seconds.
    order = requests.get(f"{api}/orders/v2/{order_id}", headers=headers, timeout=10).json()
    time.sleep(5)

    (call,) = receiver.calls
    body = json.loads(call["body"])
    assert call["path"] == "/hooks/planet"
    assert verify_signature(secret, call["body"], call["headers"]["X-Gateway-Signature"])
    assert body["id"] == order_id and body["state"] == order["state"] == "success"
    assert body["_links"]["_self"] == f"{api}/orders/v2/{order_id}"
    assert all(r["location"].startswith(f"{api}/download/?token=") for r in body["_links"]["results"])
    admin = local_stack.planet_url.removesuffix("/compute/ops") + "/_fake"
    upstream = requests.get(f"{admin}/orders", timeout=10).json()
    (planet_order,) = [o for o in upstream["orders"] if f"[gw:{order_id}]" in o["name"]]
    assert planet_order["id"] not in call["body"].decode()
    # Planet saw only the gateway's own webhook (issue 12 part 2), never the tenant's receiver or email.
    sent = planet_order["request"].get("notifications", {})
    assert set(sent) <= {"webhook"} and "/hooks/planet/" in sent.get("webhook", {}).get(
        "url", "/hooks/planet/"
    )
    assert receiver.url not in json.dumps(planet_order)
    seen_by_planet = json.dumps(upstream) + json.dumps(requests.get(f"{admin}/requests", timeout=10).json())
    assert receiver.url not in seen_by_planet
