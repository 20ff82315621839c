"""Peak memory of FinalizeFunction landing one file: 256 MiB vs 4 GiB. It must not grow with the file.

    .venv/bin/python benchmarks/landing_memory.py            # prints the table, updates RESULTS.md
    .venv/bin/python benchmarks/landing_memory.py --no-write --large-mib 1024   # a quicker look

Each file is an order of one basemap quad on the fake Planet, landed by ``functions/finalize/app.py``'s
handler in its own process against the local S3 endpoint (see ``landing_env.py``), with the default
settings. Peak RSS is the process's ``ru_maxrss`` at the end: interpreter, imports, clients and every
buffer included. "Buffers" is the most the landing's memory budget ever handed out at once.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from landing_env import (
    MIB,
    basemaps_order,
    load_average,
    local_servers,
    machine,
    mb_per_s,
    now,
    run_finalize,
    write_section,
)

BEGIN = "<!-- BEGIN landing-memory: written by benchmarks/landing_memory.py, do not edit by hand -->"
END = "<!-- END landing-memory -->"
COMMAND = ".venv/bin/python benchmarks/landing_memory.py"
LIMIT_MB = 300
TOLERANCE = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-mib", type=int, default=256)
    parser.add_argument("--large-mib", type=int, default=4096)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="landing-memory-"))
    print(f"logs in {log_dir}", flush=True)
    load_before = load_average()
    rows = []
    # moto's default: parts and objects over ~5 MiB go to temporary files, so a 4 GiB object does not
    # need 12 GiB of the S3 endpoint's memory while the upload completes.
    with local_servers(log_dir) as servers:
        for mib in (args.small_mib, args.large_mib):
            label = f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
            order = basemaps_order(servers, f"1 x {label}", 1, mib * MIB)
            run = run_finalize(servers, order, log_dir / "contenders.log")
            print(f"{label:>8}: {run.seconds:6.1f} s, peak RSS {run.peak_rss_mb:.0f} MB", flush=True)
            rows.append((label, order, run))
    report = render(rows, load_before, load_average())
    print()
    print(report)
    if not args.no_write:
        write_section(BEGIN, END, report)
        print("\nwritten to benchmarks/RESULTS.md")


def render(rows: list, load_before: str, load_after: str) -> str:
    lines = [
        "## Landing memory: peak RSS of FinalizeFunction, one small vs one large file",
        "",
        f"`{COMMAND}` — {now()}, {machine()}; load average before/after {load_before} / {load_after}.",
        "",
        "| File | Time (s) | MB/s | Peak buffers (MB) | Peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, order, run in rows:
        lines.append(
            f"| 1 x {label} | {run.seconds:.1f} | {mb_per_s(order.bytes, run.seconds):.0f} "
            f"| {run.peak_buffer_mb:.0f} | {run.peak_rss_mb:.0f} |"
        )
    small, large = rows[0][2].peak_rss_mb, rows[-1][2].peak_rss_mb
    growth = large / small - 1
    under = large < LIMIT_MB
    close = abs(growth) <= TOLERANCE
    lines += [
        "",
        "Targets:",
        "",
        f"- peak RSS at {rows[-1][0]} under {LIMIT_MB} MB: **{'met' if under else 'NOT met'}** "
        f"({large:.0f} MB).",
        f"- within {TOLERANCE:.0%} of the {rows[0][0]} figure: **{'met' if close else 'NOT met'}** "
        f"({growth:+.1%}).",
        "",
        "Default settings (16 MiB parts, 8 ranges and 8 files at once, 128 MiB buffer budget). Peak RSS",
        "is `ru_maxrss` of the function's own process: Python, boto3, pydantic, Powertools and the buffers.",
        "The fake Planet and the S3 endpoint (moto) run in their own processes and are not counted.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
