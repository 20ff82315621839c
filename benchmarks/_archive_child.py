"""Child process of ``archive_memory.py``: verify one landed zip archive, report time and peak RSS.

python benchmarks/_archive_child.py <bucket> <key> <size> <result.json>
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    bucket, key, size, result_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    from order_core.adapters import storage
    from order_core.services.archives import verify_archive

    requests = 0
    read_range = storage.ResultsStore.read_range

    def counted(self: storage.ResultsStore, key: str, first: int, last: int) -> bytes:
        nonlocal requests
        requests += 1
        return read_range(self, key, first, last)

    storage.ResultsStore.read_range = counted  # type: ignore[method-assign]
    store = storage.ResultsStore(bucket)
    started = time.perf_counter()
    # The archive's own digests were checked when it landed; only its members are verified here.
    report = verify_archive(store, key, size, "0" * 32, "0" * 64)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(result_file).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "members": len(report.members),
                "requests": requests,
                "peak_rss_mb": peak_kib * 1024 / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
