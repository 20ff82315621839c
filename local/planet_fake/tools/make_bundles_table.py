"""Derive the fake's compact bundle table from Planet's published product-bundles spec.

Usage: python -m planet_fake.tools.make_bundles_table <path to the spec JSON> [out path]

Planet's spec (`GET /compute/ops/bundles/spec`, also shipped by the `planet` SDK until January 2025 as
`planet/data/orders_product_bundle_2024-08-12.json`) describes every bundle in prose and lists, per item
type, the asset types it delivers. The fake keeps only the facts it acts on: each bundle's display name,
file type, and asset types per item type. The spec itself is not part of this repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "bundles.json"


def compact(spec: dict) -> dict:
    bundles = {
        name: {"name": body["name"], "fileType": body["fileType"], "assets": body["assets"]}
        for name, body in spec["bundles"].items()
    }
    return {"version": spec.get("version", ""), "bundles": bundles}


def main(argv: list[str]) -> None:
    source = Path(argv[1])
    out = Path(argv[2]) if len(argv) > 2 else OUT
    table = compact(json.loads(source.read_text()))
    # One bundle per line: small, and a diff shows which bundle changed.
    lines = [
        f"{json.dumps(name)}: {json.dumps(body, separators=(',', ':'))}"
        for name, body in table["bundles"].items()
    ]
    text = '{"version": ' + json.dumps(table["version"]) + ', "bundles": {\n' + ",\n".join(lines) + "\n}}\n"
    out.write_text(text)


if __name__ == "__main__":
    main(sys.argv)
