"""Deterministic file bodies, streamed in bounded memory, and their cached digests.

A generated body is a sequence of 1 MiB blocks; block k is one shared pseudo-random block rotated by an
offset derived from (order id, path) and k. So every file is different, no two consecutive MiB of a file
are equal (a client that writes a chunk at the wrong offset gets a checksum mismatch), any byte range
can be produced without producing what precedes it, and a 4 GiB file costs no more memory than a small
one.
"""

from __future__ import annotations

import hashlib
import queue
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_SIZE = 1 << 20
# 1 MiB: as large as the shared block, so a range costs the server one write per MiB.
CHUNK_SIZE = 1 << 20
# Odd, so successive blocks of one file get distinct rotations for the first 2**20 blocks (1 TiB).
_ROTATION_STRIDE = 65_537
_BLOCK = random.Random(0x504C414E4554).randbytes(BLOCK_SIZE)
# Two copies back to back: any BLOCK_SIZE window of a rotated block is one plain slice.
_DOUBLE_BLOCK = _BLOCK + _BLOCK


@dataclass(frozen=True)
class Digests:
    md5: str
    sha256: str


def _seed(order_id: str, path: str) -> int:
    digest = hashlib.sha256(f"{order_id}/{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def iter_generated(order_id: str, path: str, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of the generated body of `path` in `order_id`, at most CHUNK_SIZE at a time."""
    seed = _seed(order_id, path)
    position = start
    while position < end:
        block, offset = divmod(position, BLOCK_SIZE)
        rotation = (seed + block * _ROTATION_STRIDE) % BLOCK_SIZE
        length = min(CHUNK_SIZE, BLOCK_SIZE - offset, end - position)
        begin = rotation + offset
        yield _DOUBLE_BLOCK[begin : begin + length]
        position += length


def iter_inline(data: bytes, start: int, end: int) -> Iterator[bytes]:
    """Same contract as iter_generated, for small bodies held in memory (metadata, manifest)."""
    for position in range(start, end, CHUNK_SIZE):
        yield data[position : min(position + CHUNK_SIZE, end)]


def digest_chunks(chunks: Iterator[bytes]) -> Digests:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    for chunk in chunks:
        md5.update(chunk)
        sha256.update(chunk)
    return Digests(md5=md5.hexdigest(), sha256=sha256.hexdigest())


class _Entry:
    """One cache slot: the digests once known, an event set when they are (or when computing failed)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.digests: Digests | None = None


class DigestCache:
    """Digests of generated bodies, computed once per (order id, path, size) by streaming the body.

    The first caller computes; callers asking for the same entry meanwhile wait for that result instead of
    hashing the same bytes again. ``prefetch`` computes entries in one background thread, so an order's
    manifest is usually ready by the time the order succeeds, even with multi-GB files.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, int], _Entry] = {}
        self._queue: queue.SimpleQueue[tuple[str, str, int] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def get(self, order_id: str, path: str, size: int) -> Digests:
        key = (order_id, path, size)
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
        if not owner:
            entry.ready.wait()
            if entry.digests is not None:
                return entry.digests
            return self.get(order_id, path, size)  # the computing caller failed: try again ourselves
        try:
            entry.digests = digest_chunks(iter_generated(order_id, path, 0, size))
        except BaseException:
            with self._lock:
                self._entries.pop(key, None)
            raise
        finally:
            entry.ready.set()
        return entry.digests

    def prefetch(self, keys: list[tuple[str, str, int]]) -> None:
        """Compute these entries in the background, one after another."""
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="planet-fake-digests", daemon=True)
                self._worker.start()
        for key in keys:
            self._queue.put(key)

    def _work(self) -> None:
        while True:
            key = self._queue.get()
            if key is None:
                return
            with self._lock:
                known = key in self._entries
            if not known:
                self.get(*key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
