"""Child process of the landing benchmarks: the loop a user would write to copy an order into S3.

    python benchmarks/_plain_loop_child.py <planet api> <key> <order id> <bucket> <prefix> <result.json>

One file after another, each streamed with ``requests`` straight into ``boto3``'s ``upload_fileobj``
(s3transfer's defaults: 8 MiB parts, 10 threads). Nothing is verified.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import boto3
import requests


def main() -> None:
    api, key, order_id, bucket, prefix, result_file = sys.argv[1:7]
    order = requests.get(
        f"{api}/orders/v2/{order_id}", headers={"Authorization": f"api-key {key}"}, timeout=30
    )
    order.raise_for_status()
    s3 = boto3.client("s3")
    for result in order.json()["_links"]["results"]:
        if not result.get("location"):
            continue
        with requests.get(result["location"], stream=True, timeout=60) as response:
            response.raise_for_status()
            s3.upload_fileobj(response.raw, bucket, prefix + result["name"])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(result_file).write_text(json.dumps({"peak_rss_mb": peak_kib * 1024 / 1e6}))


if __name__ == "__main__":
    main()
