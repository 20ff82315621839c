"""Child process of the landing benchmarks: the loop a user would write to copy an order into S3.

    python benchmarks/_plain_loop_child.py [--verify] <planet api> <key> <order id> <bucket> <prefix> \
        <result.json>

One file after another, each streamed with ``requests`` straight into ``boto3``'s ``upload_fileobj``
(s3transfer's defaults: 8 MiB parts, 10 threads). Without ``--verify`` nothing is checked. With it, the
careful version: md5 and sha256 are computed while the bytes stream through and compared with
manifest.json afterwards (a file that differs is deleted again, after it was already visible in S3).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
from pathlib import Path
from typing import Any

import boto3
import requests


class HashingReader:
    """What a user would wrap around ``response.raw``: hash everything that is read."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, amount: int = -1) -> bytes:
        chunk = self.raw.read(amount)
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)
        return bytes(chunk)


def main() -> None:
    args = sys.argv[1:]
    verify = "--verify" in args
    api, key, order_id, bucket, prefix, result_file = [a for a in args if a != "--verify"][:6]
    order = requests.get(
        f"{api}/orders/v2/{order_id}", headers={"Authorization": f"api-key {key}"}, timeout=30
    )
    order.raise_for_status()
    results = [r for r in order.json()["_links"]["results"] if r.get("location")]
    expected: dict[str, Any] = {}
    if verify:
        manifest_link = next(r for r in results if r["name"].endswith("/manifest.json"))
        manifest = requests.get(manifest_link["location"], timeout=60)
        manifest.raise_for_status()
        expected = {entry["path"]: entry for entry in manifest.json()["files"]}
    s3 = boto3.client("s3")
    for result in results:
        with requests.get(result["location"], stream=True, timeout=60) as response:
            response.raise_for_status()
            key_name = prefix + result["name"]
            if not verify or result["name"].endswith("/manifest.json"):
                s3.upload_fileobj(response.raw, bucket, key_name)
                continue
            reader = HashingReader(response.raw)
            s3.upload_fileobj(reader, bucket, key_name)
            entry = expected[result["name"].split("/", 1)[1]]
            got = (reader.size, reader.md5.hexdigest(), reader.sha256.hexdigest())
            if got != (entry["size"], entry["digests"]["md5"], entry["digests"]["sha256"]):
                s3.delete_object(Bucket=bucket, Key=key_name)
                raise SystemExit(f"{result['name']} does not match manifest.json: {got}")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(result_file).write_text(json.dumps({"peak_rss_mb": peak_kib * 1024 / 1e6}))


if __name__ == "__main__":
    main()
