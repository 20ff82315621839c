"""md5 and sha256 whose state can be saved and restored, so hashing a file can resume in a later invocation.

Python's ``hashlib`` cannot export a digest's internal state. OpenSSL's low-level ``MD5_*`` and ``SHA256_*``
functions work on a plain struct that the caller owns (no pointers inside), so the bytes of that struct
*are* the state. They are called through ctypes on the libcrypto that Python itself loaded: the same code
as ``hashlib`` at the same speed, and ctypes releases the GIL during each call, so several files hash in
parallel. Where that library or those symbols are missing, ``new_digest`` falls back to ``hashlib``, which
works the same but whose state cannot be saved (a resumed file then starts over).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import threading
from functools import cache
from typing import Literal, Protocol

Algorithm = Literal["md5", "sha256"]

# Larger than MD5_CTX (92 bytes) and SHA256_CTX (112 bytes) in every OpenSSL since 0.9.8: room to spare,
# never too small. The whole buffer is saved, so the exact struct size never matters.
_CTX_BYTES = 256
_DIGEST_BYTES = {"md5": 16, "sha256": 32}
_SYMBOLS = {
    "md5": ("MD5_Init", "MD5_Update", "MD5_Final"),
    "sha256": ("SHA256_Init", "SHA256_Update", "SHA256_Final"),
}

Buffer = bytes | bytearray | memoryview


class StreamDigest(Protocol):
    name: str

    def update(self, data: Buffer) -> None: ...

    def hexdigest(self) -> str: ...

    def state(self) -> str | None:
        """The state as text to save, or None if this digest cannot be resumed."""


class _OpenSSL:
    """The low-level digest functions of one libcrypto, with the version its saved states are tied to."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.functions = {}
        for algorithm, (init, update, final) in _SYMBOLS.items():
            init_fn, update_fn, final_fn = getattr(lib, init), getattr(lib, update), getattr(lib, final)
            init_fn.argtypes, init_fn.restype = [ctypes.c_void_p], ctypes.c_int
            update_fn.argtypes, update_fn.restype = (
                [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t],
                ctypes.c_int,
            )
            final_fn.argtypes, final_fn.restype = [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
            self.functions[algorithm] = (init_fn, update_fn, final_fn)
        self.version = _library_version(lib)


def _library_version(lib: ctypes.CDLL) -> str:
    for name in ("OpenSSL_version", "SSLeay_version"):  # 1.1+, then 1.0.x
        function = getattr(lib, name, None)
        if function is not None:
            function.argtypes, function.restype = [ctypes.c_int], ctypes.c_char_p
            return (function(0) or b"unknown").decode(errors="replace")
    return "unknown"


def _libcrypto_candidates() -> list[str]:
    import _hashlib  # noqa: F401 - maps the libcrypto Python uses into this process, so /proc/self/maps names it

    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "libcrypto" in path and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    found = ctypes.util.find_library("crypto")
    if found and found not in paths:
        paths.append(found)
    return paths


@cache
def _openssl() -> _OpenSSL | None:
    for path in _libcrypto_candidates():
        try:
            openssl = _OpenSSL(ctypes.CDLL(path))
        except (OSError, AttributeError):
            continue
        if _self_test(openssl):
            return openssl
    return None


def _self_test(openssl: _OpenSSL) -> bool:
    try:
        for algorithm in _SYMBOLS:
            digest = _ResumableDigest(algorithm, openssl)  # type: ignore[arg-type]
            digest.update(b"planet")
            if digest.hexdigest() != hashlib.new(algorithm, b"planet").hexdigest():
                return False
    except (OSError, ValueError):
        return False
    return True


def resumable() -> bool:
    """Whether digests made here can save their state."""
    return _openssl() is not None


class _ResumableDigest:
    def __init__(self, algorithm: Algorithm, openssl: _OpenSSL, state: bytes | None = None) -> None:
        self.name: str = algorithm
        self._openssl = openssl
        self._init, self._update, self._final = openssl.functions[algorithm]
        self._algorithm: Algorithm = algorithm
        self._ctx = ctypes.create_string_buffer(_CTX_BYTES)
        self._lock = threading.Lock()
        if state is None:
            if self._init(self._ctx) != 1:
                raise ValueError(f"{algorithm} init failed")
        else:
            ctypes.memmove(self._ctx, state, _CTX_BYTES)

    def update(self, data: Buffer) -> None:
        if not len(data):
            return
        with self._lock:
            if isinstance(data, bytes):
                ok = self._update(self._ctx, data, len(data))
            else:
                view = memoryview(data).cast("B")
                if view.readonly:
                    ok = self._update(self._ctx, bytes(view), len(view))
                else:
                    pointer = (ctypes.c_char * len(view)).from_buffer(view)
                    try:
                        ok = self._update(self._ctx, pointer, len(view))
                    finally:
                        del pointer
                view.release()
        if ok != 1:
            raise ValueError(f"{self.name} update failed")

    def hexdigest(self) -> str:
        with self._lock:
            copy = ctypes.create_string_buffer(self._ctx.raw, _CTX_BYTES)
        out = ctypes.create_string_buffer(_DIGEST_BYTES[self._algorithm])
        if self._final(out, copy) != 1:
            raise ValueError(f"{self.name} final failed")
        return out.raw.hex()

    def state(self) -> str | None:
        with self._lock:
            raw = self._ctx.raw
        return f"{self._openssl.version}|{base64.b64encode(raw).decode()}"


class _HashlibDigest:
    def __init__(self, algorithm: Algorithm) -> None:
        self.name: str = algorithm
        self._hash = hashlib.new(algorithm, usedforsecurity=False)

    def update(self, data: Buffer) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def state(self) -> str | None:
        return None


def new_digest(algorithm: Algorithm, state: str | None = None) -> StreamDigest:
    """A fresh digest, or one continuing from ``state``; raises ValueError if that state cannot be restored
    here (saved by another OpenSSL version, or this process has no resumable digests)."""
    openssl = _openssl()
    if state is not None:
        version, _, encoded = state.rpartition("|")
        if openssl is None or version != openssl.version:
            raise ValueError("digest state saved by another OpenSSL: cannot resume it here")
        raw = base64.b64decode(encoded)
        if len(raw) != _CTX_BYTES:
            raise ValueError("digest state has the wrong size")
        return _ResumableDigest(algorithm, openssl, raw)
    if openssl is None:
        return _HashlibDigest(algorithm)
    return _ResumableDigest(algorithm, openssl)


def hashlib_digest(algorithm: Algorithm) -> StreamDigest:
    """A plain (not resumable) digest, for bodies hashed in one go."""
    return _HashlibDigest(algorithm)
