"""The `planet` CLI and plain HTTP clients against the gateway, with only the base URL and key changed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from stack_process import new_key

ROOT = Path(__file__).resolve().parents[2]
PLANET = Path(sys.executable).with_name("planet")
SCENES = json.loads((ROOT / "events" / "planet" / "create_scenes_direct.json").read_text())


def cli(stack: Any, key: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PL_API_KEY": key, "HOME": str(home)}
    return subprocess.run(
        [str(PLANET), "orders", "-u", stack.api_url, *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def other_key(local_stack: Any) -> str:
    return new_key(local_stack, "other-team")


def test_planet_cli_creates_waits_downloads_with_checksum_lists_and_cancels(
    local_stack: Any, tmp_path: Path
) -> None:
    key = local_stack.outputs["api_key"]
    request = SCENES | {"name": "cli order"}

    created = cli(local_stack, key, "create", json.dumps(request), home=tmp_path)
    assert created.returncode == 0, created.stderr
    order_id = json.loads(created.stdout)["id"]
    waited = cli(local_stack, key, "wait", "--delay", "1", order_id, home=tmp_path)
    downloaded = cli(
        local_stack,
        key,
        "download",
        "--checksum",
        "MD5",
        "--directory",
        str(tmp_path),
        order_id,
        home=tmp_path,
    )
    listed = cli(local_stack, key, "list", "--state", "success", "--name", "cli order", home=tmp_path)

    assert waited.stdout.strip() == "success", waited.stderr
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / order_id / "manifest.json").is_file()
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [order_id]

    queued = json.loads(
        cli(local_stack, key, "create", json.dumps(SCENES | {"name": "to cancel"}), home=tmp_path).stdout
    )
    cancelled = cli(local_stack, key, "cancel", queued["id"], home=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    # The CLI prints the cancelled order as a Python dict, not as JSON.
    assert ast.literal_eval(cancelled.stdout.strip())["state"] == "cancelled"


def test_missing_or_wrong_key_answers_401_in_planets_shape(local_stack: Any) -> None:
    missing = requests.get(f"{local_stack.api_url}/orders/v2", timeout=10)
    wrong = requests.get(
        f"{local_stack.api_url}/orders/v2", headers={"Authorization": "api-key nope"}, timeout=10
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert set(missing.json()) == {"message"} and "API key" in wrong.json()["message"]


def test_basic_auth_with_the_key_as_user_name_is_accepted(local_stack: Any) -> None:
    response = requests.get(
        f"{local_stack.api_url}/stats/orders/v2", auth=(local_stack.outputs["api_key"], ""), timeout=10
    )

    assert response.status_code == 200
    assert set(response.json()) == {"organization", "user"}


def test_second_tenant_cannot_see_or_cancel_the_first_tenants_order(local_stack: Any, other_key: str) -> None:
    mine = {"Authorization": f"api-key {local_stack.outputs['api_key']}"}
    theirs = {"Authorization": f"api-key {other_key}"}
    order = requests.post(f"{local_stack.api_url}/orders/v2", json=SCENES, headers=mine, timeout=10).json()

    seen = requests.get(f"{local_stack.api_url}/orders/v2/{order['id']}", headers=theirs, timeout=10)
    cancel = requests.put(f"{local_stack.api_url}/orders/v2/{order['id']}", headers=theirs, timeout=10)
    listed = requests.get(f"{local_stack.api_url}/orders/v2?source_type=all", headers=theirs, timeout=10)

    assert (seen.status_code, cancel.status_code) == (404, 404)
    assert order["id"] not in {o["id"] for o in listed.json()["orders"]}
    assert (
        requests.get(f"{local_stack.api_url}/orders/v2/{order['id']}", headers=mine, timeout=10).json()[
            "state"
        ]
        != "cancelled"
    )
