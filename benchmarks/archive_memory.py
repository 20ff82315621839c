"""Peak memory of verifying a landed zip archive member by member: 256 MiB vs 1 GiB. It must not grow.

    .venv/bin/python benchmarks/archive_memory.py            # prints the table, updates RESULTS.md
    .venv/bin/python benchmarks/archive_memory.py --no-write --large-mib 256   # a quicker look

Each archive is built on disk from generated members (16 MiB each, random bytes: imagery barely
compresses), uploaded to the local S3 endpoint (moto, see ``landing_env.py``), and verified by
``order_core.services.archives.verify_archive`` in its own process, with the default settings: ranged GETs
of 8 MiB through ``RangedObject``, every member read to its end (``zipfile`` checks its CRC-32) and hashed
(md5 and sha256), as landing does after the archive itself landed. Peak RSS is the child's ``ru_maxrss``:
interpreter, imports, the boto3 client and every buffer included.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from landing_env import (
    BENCH,
    MIB,
    PYTHON,
    base_env,
    load_average,
    local_servers,
    machine,
    mb_per_s,
    now,
    write_section,
)

BEGIN = "<!-- BEGIN archive-memory: written by benchmarks/archive_memory.py, do not edit by hand -->"
END = "<!-- END archive-memory -->"
COMMAND = ".venv/bin/python benchmarks/archive_memory.py"
MEMBER_MIB = 16
TOLERANCE = 0.10


def build_archive(path: Path, total_mib: int, compression: int) -> int:
    """A zip of ``total_mib`` MiB of generated members, written member by member in 1 MiB chunks."""
    generator = random.Random(total_mib)
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=1) as archive:
        for number in range(max(1, total_mib // MEMBER_MIB)):
            with archive.open(
                f"PSScene/item_{number:04d}_3B_AnalyticMS.tif", "w", force_zip64=True
            ) as member:
                for _ in range(MEMBER_MIB):
                    member.write(generator.randbytes(MIB))
        archive.writestr("manifest.json", json.dumps({"name": "", "files": []}))
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-mib", type=int, default=256)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="archive-memory-"))
    print(f"files and logs in {work}", flush=True)
    load_before = load_average()
    rows = []
    cases = [
        (args.small_mib, zipfile.ZIP_STORED, "stored"),
        (args.large_mib, zipfile.ZIP_STORED, "stored"),
        (args.large_mib, zipfile.ZIP_DEFLATED, "deflated"),
    ]
    with local_servers(work) as servers:
        s3 = servers.s3()
        for mib, compression, kind in cases:
            label = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
            archive = work / f"{label.replace(' ', '')}-{kind}.zip"
            size = build_archive(archive, mib, compression)
            key = f"orders/bench/{archive.name}"
            s3.upload_file(str(archive), servers.bucket, key)
            archive.unlink()
            result_file = work / f"{archive.name}.json"
            env = {**base_env(), **servers.function_env}
            command = [
                PYTHON,
                str(BENCH / "_archive_child.py"),
                servers.bucket,
                key,
                str(size),
                str(result_file),
            ]
            with (work / "children.log").open("ab") as log:
                completed = subprocess.run(command, env=env, stdout=log, stderr=log, check=False)
            if completed.returncode != 0:
                sys.exit(f"the verifying process failed; see {work / 'children.log'}")
            child = json.loads(result_file.read_text())
            print(
                f"{label:>8} {kind:>8}: {child['seconds']:6.1f} s, {child['requests']} ranged GETs, "
                f"peak RSS {child['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            rows.append((f"{label}, {child['members']} members, {kind}", size, child))
    report = render(rows, load_before, load_average())
    print()
    print(report)
    if not args.no_write:
        write_section(BEGIN, END, report)
        print("\nwritten to benchmarks/RESULTS.md")


def render(rows: list, load_before: str, load_after: str) -> str:
    lines = [
        "## Zip archives: peak RSS of verifying a landed archive member by member",
        "",
        f"`{COMMAND}` — {now()}, {machine()}; load average before/after {load_before} / {load_after}.",
        "",
        "| Archive | Size (MB) | Time (s) | MB/s | Ranged GETs | Peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, size, child in rows:
        lines.append(
            f"| {label} | {size / 1e6:.0f} | {child['seconds']:.1f} | {mb_per_s(size, child['seconds']):.0f} "
            f"| {child['requests']} | {child['peak_rss_mb']:.0f} |"
        )
    small, large = rows[0][2]["peak_rss_mb"], max(row[2]["peak_rss_mb"] for row in rows[1:])
    growth = large / small - 1
    lines += [
        "",
        f"Target: the largest archive's peak within {TOLERANCE:.0%} of the smallest's: "
        f"**{'met' if abs(growth) <= TOLERANCE else 'NOT met'}** ({growth:+.1%}).",
        "",
        "Default settings: 8 MiB ranged GETs (one block held at a time), members read 1 MiB at a time",
        "and hashed (md5, sha256), CRC-32 checked by `zipfile`. The S3 endpoint (moto) runs in its own",
        "process and is not counted. The times are moto's: it reads the whole object from its temporary",
        "file for every ranged GET (`FakeKey.value`), so a GET of a 1 GiB object costs a GiB of reads; S3",
        "serves a range in proportion to the range.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
