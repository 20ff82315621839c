"""Landing throughput: our FinalizeFunction vs the loop a user would write vs ``planet orders download``.

    .venv/bin/python benchmarks/landing_throughput.py            # prints the table, updates RESULTS.md
    .venv/bin/python benchmarks/landing_throughput.py --runs 1 --no-write --large-mib 256   # a quick look

Two orders, landed side by side in one run against the same fake Planet and the same local S3 endpoint
(see ``landing_env.py`` for how the servers and the contenders run):

* one file of 2 GiB (a basemap quad);
* 200 files of 10 MiB (200 quads).

Every contender lands each order ``--runs`` times, in rotating order; the table shows the median time
(process spawn to exit) and the throughput it implies (all bytes of the order, manifest included, in
MB/s of 10^6 bytes), and how many times faster ours was.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from landing_env import (
    CHECKED_LOOP,
    MIB,
    PLAIN_LOOP,
    BenchOrder,
    Run,
    Servers,
    basemaps_order,
    load_average,
    local_servers,
    machine,
    mb_per_s,
    now,
    run_checked_loop,
    run_finalize,
    run_plain_loop,
    run_planet_cli,
    write_section,
)

BEGIN = "<!-- BEGIN landing-throughput: written by benchmarks/landing_throughput.py, do not edit by hand -->"
END = "<!-- END landing-throughput -->"
COMMAND = ".venv/bin/python benchmarks/landing_throughput.py"
#: moto keeps objects up to this size in memory; by default it writes every part, and then every object
#: again, to a temporary file, and every S3 contender would mostly measure this machine's disk.
MOTO_IN_MEMORY_BYTES = 3 * 1024**3

Contender = Callable[[Servers, BenchOrder, Path], Run]
CONTENDERS: list[Contender] = [run_finalize, run_plain_loop, run_checked_loop, run_planet_cli]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per contender and order (default 5)")
    parser.add_argument("--large-mib", type=int, default=2048, help="size of the one-file order (MiB)")
    parser.add_argument("--small-files", type=int, default=200, help="files in the many-file order")
    parser.add_argument("--small-mib", type=int, default=10, help="size of each of them (MiB)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--moto-on-disk", action="store_true", help="let moto spill parts and objects to temporary files"
    )
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="landing-bench-"))
    log = log_dir / "contenders.log"
    print(f"logs in {log_dir}", flush=True)
    load_before = load_average()
    results: list[tuple[BenchOrder, dict[str, list[Run]]]] = []
    in_memory = None if args.moto_on_disk else MOTO_IN_MEMORY_BYTES
    with local_servers(log_dir, moto_in_memory_bytes=in_memory) as servers:
        orders = [
            (f"1 x {_size(args.large_mib)}", 1, args.large_mib),
            (f"{args.small_files} x {_size(args.small_mib)}", args.small_files, args.small_mib),
        ]
        for label, count, mib in orders:
            order = basemaps_order(servers, label, count, mib * MIB)
            runs: dict[str, list[Run]] = {}
            for round_ in range(args.runs):
                turn = round_ % len(CONTENDERS)
                rotated = CONTENDERS[turn:] + CONTENDERS[:turn]
                for contender in rotated:
                    run = contender(servers, order, log)
                    runs.setdefault(run.contender, []).append(run)
                    print(f"{label:>14}  {run.contender:<34} {run.seconds:7.2f} s", flush=True)
            results.append((order, runs))
    report = render(results, args.runs, load_before, load_average())
    print()
    print(report)
    if not args.no_write:
        write_section(BEGIN, END, report)
        print(f"\nwritten to {Path('benchmarks/RESULTS.md')}")


def _size(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def render(
    results: list[tuple[BenchOrder, dict[str, list[Run]]]], runs: int, load_before: str, load_after: str
) -> str:
    lines = [
        "## Landing throughput: FinalizeFunction vs a plain loop vs `planet orders download`",
        "",
        f"`{COMMAND}` ({runs} runs per contender), {now()}. {machine()}.",
        f"Load average before / after: {load_before} / {load_after}.",
        "",
        "Time: median wall time, process spawn to exit. MB/s: all bytes of the order (manifest included) per",
        "second, 1 MB = 10^6 B. CPU: median CPU seconds of the contender's own process, and of the S3",
        'endpoint while it ran. "Ours x": how many times faster ours was (median vs median).',
        "",
        "| Order | Contender | Verifies | Time (s) | MB/s | CPU (s) | S3 endpoint CPU (s) "
        "| Peak RSS (MB) | Ours x |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for order, by_contender in results:
        medians = {name: statistics.median(r.seconds for r in rs) for name, rs in by_contender.items()}
        ours_name = next(name for name in medians if "ours" in name)
        ours = medians[ours_name]
        label = f"{order.label} ({order.files} files, {order.bytes / 1e9:.2f} GB)"
        for name, seconds in medians.items():
            rs = by_contender[name]
            rss = max((r.peak_rss_mb for r in rs if r.peak_rss_mb), default=None)
            cpu = statistics.median(r.cpu_seconds for r in rs)
            s3_cpu = statistics.median(r.s3_cpu_seconds for r in rs)
            cells = [
                label,
                name,
                rs[0].verified,
                f"{seconds:.2f}",
                f"{mb_per_s(order.bytes, seconds):.0f}",
                f"{cpu:.1f}",
                f"{s3_cpu:.1f}" if s3_cpu else "-",
                f"{rss:.0f}" if rss else "-",
                "-" if name == ours_name else f"{seconds / ours:.2f}x",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        plain, checked = medians[PLAIN_LOOP], medians[CHECKED_LOOP]
        cli = next(s for n, s in medians.items() if "planet" in n)
        if order.files <= 2:
            met = ours <= plain
            verdicts.append(
                f"- {order.label}: at least as fast as the plain loop while verifying both digests: "
                f"**{'met' if met else 'NOT met'}** ({plain / ours:.2f}x; {checked / ours:.2f}x the same loop"
                " checking md5 and sha256 as ours does)."
            )
        else:
            met = ours * 2 <= plain and ours * 2 <= cli
            verdicts.append(
                f"- {order.label}: at least 2x faster than the plain loop and `planet orders download`: "
                f"**{'met' if met else 'NOT met'}** ({plain / ours:.2f}x and {cli / ours:.2f}x;"
                f" {checked / ours:.2f}x the loop checking md5 and sha256 as ours does)."
            )
    lines += ["", "Targets:", "", *verdicts, "", "Where the time goes (medians of the same runs):", ""]
    lines += [bound(order, by_contender) for order, by_contender in results]
    lines += ["", *NOTES]
    return "\n".join(lines)


def hashing_ns_per_byte() -> float:
    """CPU cost of md5 + sha256 per byte on this machine (what verifying costs, whoever does it)."""
    data = bytes(64 * MIB)
    started = time.thread_time()
    hashlib.md5(data, usedforsecurity=False).digest()
    hashlib.sha256(data).digest()
    return (time.thread_time() - started) / len(data) * 1e9


def bound(order: BenchOrder, by_contender: dict[str, list[Run]]) -> str:
    """The CPU accounting of one order: what ours, the servers and the plain loop used."""

    def median(name: str, field: str) -> float:
        runs = next(rs for contender, rs in by_contender.items() if name in contender)
        return float(statistics.median(getattr(r, field) for r in runs))

    own, s3, fake = (median("ours", f) for f in ("cpu_seconds", "s3_cpu_seconds", "planet_cpu_seconds"))
    hashing = HASH_NS_PER_BYTE * order.bytes / 1e9
    plain, plain_s3 = median(PLAIN_LOOP, "cpu_seconds"), median(PLAIN_LOOP, "s3_cpu_seconds")
    return (
        f"- {order.label}: CPU seconds used by ours {own:.1f} (md5 + sha256 of every byte: {hashing:.1f},"
        f" at {HASH_NS_PER_BYTE:.2f} ns/B here), its S3 endpoint {s3:.1f}, the fake Planet {fake:.1f}:"
        f" {own + s3 + fake:.1f} on {os.cpu_count()} cores. The plain loop {plain:.1f}, its S3 endpoint"
        f" {plain_s3:.1f}."
    )


HASH_NS_PER_BYTE = hashing_ns_per_byte()


NOTES = [
    "Setup, the same for every contender:",
    "",
    "- Fake Planet (`python -m planet_fake`, its own process): rate limits **off**",
    "  (`FAKE_PLANET_RATE_LIMITS=false`: at Planet's 5 downloads/s nobody lands 200 files in under 40 s),",
    "  links valid 1 h, digests computed before the first run. Our function's pacing is off to match",
    "  (`DOWNLOAD_REQUESTS_PER_SECOND=0`; in AWS it keeps to Planet's 5/s).",
    "- Local S3 endpoint: a moto server (`python -m moto.server`, its own process) with the template's",
    "  resources, keeping objects in memory (`MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=3 GiB`; by default it writes",
    "  every part, then every object again, to temporary files). Single-threaded Python: it md5-hashes",
    "  every part and copies the whole object (several times) when a multipart upload completes.",
    "- FinalizeFunction: `functions/finalize/app.py` with its default settings (16 MiB parts, 8 files and",
    "  8 ranges at once, 128 MiB of buffers) in local mode (`ALLOW_HTTP_DOWNLOADS=true`, allowed host",
    "  127.0.0.1). It hashes md5 and sha256 of every byte and completes nothing that differs from",
    "  manifest.json.",
    "- Plain loop: `requests.get(stream=True)` then `s3.upload_fileobj(response.raw, ...)`, one file after",
    "  another, s3transfer defaults (8 MiB parts, 10 threads). Over plain HTTP (moto) botocore also signs",
    "  each part's payload with SHA-256, which it does not do over TLS in AWS; our client turns that off",
    "  explicitly (`payload_signing_enabled=False`, what happens in AWS anyway).",
    "- The same loop + md5/sha256 check: what a careful user adds to it. The bytes are hashed as",
    "  `upload_fileobj` reads them and compared with manifest.json after each upload; a file that differs",
    "  is deleted again, but it was visible in S3 until then (ours completes nothing unverified).",
    "- `planet orders download` writes to local disk, one file after another, verifying nothing without",
    '  `--checksum`: a reference for "what users do today", not an S3 contender.',
    "",
    "Noise: every contender here is bound by CPU that the S3 endpoint (moto) shares with it, and moto's",
    "CPU for the same 2 GiB upload varies by about a third from run to run (its multipart completion copies",
    "the whole object several times, and this VM's page faults are expensive); compare the ratios of",
    "several runs, not one figure.",
]


if __name__ == "__main__":
    main()
