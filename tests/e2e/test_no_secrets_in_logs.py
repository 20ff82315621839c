"""After a whole order on the local stack, its log holds no secret: not the Planet key, not a download
token, not a presigned URL's signature (the stack's own lines, moto's and the functions' alike)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from test_order_over_http import SEED, wait_for_terminal


def test_local_stack_log_after_a_whole_order_holds_no_secret(local_stack: Any) -> None:
    api = local_stack.api_url
    headers = {"Authorization": f"api-key {local_stack.outputs['api_key']}"}
    request = json.loads((SEED / "create_scenes_direct.json").read_text())
    created = requests.post(f"{api}/orders/v2", json=request, headers=headers, timeout=10)
    order = wait_for_terminal(api, headers, created.json()["id"])
    assert order["state"] == "success", order
    tokens, signatures = [], []
    for result in order["_links"]["results"]:
        tokens.append(parse_qs(urlsplit(result["location"]).query)["token"][0])
        redirect = requests.get(result["location"], allow_redirects=False, timeout=10)
        signed = redirect.headers["Location"]
        query = parse_qs(urlsplit(signed).query)
        signatures += query.get("X-Amz-Signature", []) + query.get("Signature", [])  # SigV4 or SigV2
        assert requests.get(signed, timeout=30).status_code == 200
    forged = requests.get(f"{api}/download/?token={tokens[0][:-4]}AAAA", timeout=10)
    assert forged.status_code == 401
    time.sleep(0.5)  # the stack writes its access log line after the answer

    log = Path(local_stack.log_path).read_text(encoding="utf-8", errors="replace")

    assert "/compute/ops/download/?token=<redacted>" in log  # the downloads were logged, masked
    assert local_stack.outputs["planet_api_key"] not in log
    assert [token for token in tokens if token in log] == []
    assert tokens[0][:-4] not in log
    assert len(signatures) == len(tokens)
    assert [signature for signature in signatures if signature in log] == []
