"""Deterministic file bodies, streamed in bounded memory, and their cached digests.

A generated body is a sequence of 1 MiB blocks; block k is one shared pseudo-random block rotated by an
offset derived from (order id, path) and k. So every file is different, no two consecutive MiB of a file
are equal (a client that writes a chunk at the wrong offset gets a checksum mismatch), any byte range
can be produced without producing what precedes it, and a 4 GiB file costs no more memory than a small
one.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_SIZE = 1 << 20
CHUNK_SIZE = 256 * 1024
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


class DigestCache:
    """Digests of generated bodies, computed once per (order id, path, size) by streaming the body.

    Two threads asking for the same missing entry may both compute it; the results are identical, so
    the lock only guards the dict, never the (possibly long) hashing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[str, str, int], Digests] = {}

    def get(self, order_id: str, path: str, size: int) -> Digests:
        key = (order_id, path, size)
        with self._lock:
            cached = self._digests.get(key)
        if cached is not None:
            return cached
        digests = digest_chunks(iter_generated(order_id, path, 0, size))
        with self._lock:
            return self._digests.setdefault(key, digests)

    def clear(self) -> None:
        with self._lock:
            self._digests.clear()
