"""Resumable md5/sha256 (``order_core.adapters.digests``) and the part size rule
(``storage.part_size_for``)."""

from __future__ import annotations

import hashlib
import os

import pytest
from order_core.adapters import digests
from order_core.adapters.storage import MAX_PARTS, MIB, S3_MAX_PART_BYTES, part_size_for

DATA = os.urandom(3 * MIB + 12345)
resumable_only = pytest.mark.skipif(not digests.resumable(), reason="no low-level OpenSSL digests here")


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_digest_fed_in_pieces_of_any_size_equals_hashlib(algorithm: str) -> None:
    digest = digests.new_digest(algorithm)  # type: ignore[arg-type]
    view = memoryview(bytearray(DATA))
    for start, end in [(0, 1), (1, 64), (64, 1000), (1000, MIB + 3), (MIB + 3, len(DATA))]:
        digest.update(view[start:end])

    assert digest.hexdigest() == hashlib.new(algorithm, DATA).hexdigest()


@resumable_only
@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, 2 * MIB + 7])
def test_digest_saved_mid_stream_and_restored_elsewhere_equals_hashlib(algorithm: str, cut: int) -> None:
    first = digests.new_digest(algorithm)  # type: ignore[arg-type]
    first.update(DATA[:cut])
    state = first.state()
    assert state is not None

    second = digests.new_digest(algorithm, state)  # type: ignore[arg-type]
    second.update(DATA[cut:])

    assert second.hexdigest() == hashlib.new(algorithm, DATA).hexdigest()
    assert first.hexdigest() == hashlib.new(algorithm, DATA[:cut]).hexdigest()  # reading does not consume


@resumable_only
def test_state_saved_by_another_openssl_is_refused() -> None:
    digest = digests.new_digest("md5")
    digest.update(b"abc")
    state = digest.state()
    assert state is not None
    _version, _, encoded = state.rpartition("|")

    with pytest.raises(ValueError, match="another OpenSSL"):
        digests.new_digest("md5", f"OpenSSL 0.9.8 ancient|{encoded}")


def test_plain_hashlib_digest_cannot_be_saved() -> None:
    digest = digests.hashlib_digest("sha256")
    digest.update(b"abc")

    assert digest.state() is None
    assert digest.hexdigest() == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    ("size", "part"),
    [
        (0, 16 * MIB),
        (2 * 1024 * MIB, 16 * MIB),
        (100 * 1024 * MIB, 16 * MIB),  # 6,400 parts
        (1024 * 1024 * MIB, 105 * MIB),  # 1 TiB: 16 MiB would need 65,536 parts
        (48 * 1024 * 1024 * MIB, 5034 * MIB),
    ],
)
def test_part_size_keeps_any_file_within_ten_thousand_parts(size: int, part: int) -> None:
    chosen = part_size_for(size)

    assert chosen == part
    assert -(-size // chosen) <= MAX_PARTS
    assert 5 * MIB <= chosen <= S3_MAX_PART_BYTES
