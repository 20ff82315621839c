"""Moving one result file from Planet into the results bucket: verified, in bounded memory, resumable.

Small files (up to one part) are downloaded into one buffer, hashed, checked and sent with one PUT.

Larger files become a multipart upload whose parts are byte ranges of the file, fetched and uploaded by a
shared pool of workers, several at once. md5 cannot be computed piecewise and combined, so each file has
one thread per digest that consumes the parts strictly in order; a part's buffer is dropped once it is
uploaded and both digests have passed it. Every buffer is taken from one memory budget before its part
is fetched, so memory is bounded by the budget (plus one part), whatever the size or number of files.

Resume: the "committed" prefix of a file is the parts that are both uploaded and hashed. After it grows,
a small checkpoint (upload id, the parts' ETags, both digests' saved state) is written to S3, so another
invocation, even after this one was killed, continues with the next part: only parts in flight are lost.
A file is completed (made visible) only when its size, md5 and sha256 equal the manifest's; a mismatch
aborts the upload and the file is tried again from its first byte.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from order_core.adapters.digests import StreamDigest, new_digest
from order_core.adapters.downloads import DownloadStream, ResultDownloader
from order_core.adapters.storage import (
    DEFAULT_PART_BYTES,
    MIB,
    S3_MIN_PART_BYTES,
    ResultsStore,
    UploadGone,
    part_size_for,
)
from order_core.errors import (
    LinkExpired,
    ResultVerificationFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.order import LandedFile
from order_core.observability import logger, metrics

CHECKPOINT_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True)
class TransferLimits:
    #: Preferred part size; larger for files that would otherwise need more than 10,000 parts.
    part_bytes: int = DEFAULT_PART_BYTES
    #: S3's smallest part; only tests against a store that accepts smaller parts lower it.
    min_part_bytes: int = S3_MIN_PART_BYTES
    #: Memory for file and part buffers, all files together.
    buffer_bytes: int = 128 * MIB
    #: Attempts per byte range (truncated, reset, 5xx, expired link) before the file attempt fails.
    range_attempts: int = 4
    #: Attempts per file; a digest mismatch costs one and restarts the file.
    file_attempts: int = 3
    #: How many 429s one file may wait out, each for its Retry-After (at most ``max_rate_limit_wait``).
    rate_limit_waits: int = 10
    max_rate_limit_wait: float = 10.0
    retry_pause_seconds: float = 0.25
    #: At most one checkpoint write per file per this many seconds (the last one is always written).
    checkpoint_seconds: float = 1.0


@dataclass(frozen=True)
class FileToLand:
    path: str
    key: str
    #: ``UNKNOWN_SIZE`` until learned from the server (a zip archive the manifest does not size).
    size: int
    #: The manifest's digests; None only for a zip archive the manifest lists without them, which is
    #: verified member by member instead (``archives.py``).
    md5: str | None
    sha256: str | None
    media_type: str | None
    #: ``name`` of its entry in ``_links.results``, to ask for a fresh link.
    link_name: str

    @property
    def verified_by_manifest(self) -> bool:
        return bool(self.md5 and self.sha256)

    @property
    def metadata(self) -> dict[str, str]:
        return {"md5": self.md5, "sha256": self.sha256} if self.md5 and self.sha256 else {}

    @property
    def content_type(self) -> str:
        return self.media_type or "application/octet-stream"

    def landed(self, md5: str | None = None, sha256: str | None = None) -> LandedFile:
        """The landed file, with the digests computed while landing it when the manifest gave none."""
        found_md5, found_sha256 = self.md5 or md5, self.sha256 or sha256
        assert found_md5 is not None and found_sha256 is not None
        return LandedFile(
            path=self.path,
            key=self.key,
            size=self.size,
            md5=found_md5,
            sha256=found_sha256,
            media_type=self.media_type,
        )


#: The size of a file the manifest does not give one for, until the server told it.
UNKNOWN_SIZE = -1


class LinkSource(Protocol):
    def location(self, name: str) -> str:
        """The current download link of a result, refreshed first if it has expired."""

    def refresh(self, name: str, stale: str) -> str:
        """A fresh link after ``stale`` was refused."""


def mismatches(file: FileToLand, size: int, md5: str, sha256: str) -> list[str]:
    problems = []
    if size != file.size:
        problems.append(f"size {size} != manifest {file.size}")
    if file.md5 is not None and md5 != file.md5:
        problems.append(f"md5 {md5} != manifest {file.md5}")
    if file.sha256 is not None and sha256 != file.sha256:
        problems.append(f"sha256 {sha256} != manifest {file.sha256}")
    return problems


class MemoryBudget:
    """Bytes that buffers may hold at once. A request larger than the whole budget waits until nothing
    else is held, then gets it, so one oversized part can still be landed (alone)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self, amount: int, cancelled: Callable[[], bool]) -> bool:
        with self._cond:
            while self.used and self.used + amount > self.total:
                if cancelled():
                    return False
                self._cond.wait(0.1)
            if cancelled():
                return False
            self.used += amount
            self.peak = max(self.peak, self.used)
            return True

    def release(self, amount: int) -> None:
        with self._cond:
            self.used -= amount
            self._cond.notify_all()


class BufferPool:
    """Part buffers for reuse. A fresh 16 MiB ``bytearray`` costs zero-filling and thousands of page
    faults; reusing full-size part buffers avoids both. Only buffers of the newest size are kept, and never
    more than the memory budget's worth, so idle buffers cannot add to what the budget allows."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._size = 0
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            if size == self._size and self._free:
                return self._free.pop()
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        with self._lock:
            if len(buffer) != self._size:
                self._size, self._free = len(buffer), []
            if (len(self._free) + 1) * self._size <= self._max_bytes:
                self._free.append(buffer)


class Checkpoints:
    """One small JSON document per file being uploaded in parts, outside the order's result folder."""

    def __init__(self, store: ResultsStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix.strip("/")

    def key_for(self, file: FileToLand) -> str:
        return f"{self._prefix}/{hashlib.sha256(file.key.encode()).hexdigest()[:40]}.json"

    def load(self, file: FileToLand) -> dict[str, Any] | None:
        document = self._store.get_json(self.key_for(file))
        return document if isinstance(document, dict) else None

    def save(self, file: FileToLand, document: dict[str, Any]) -> None:
        self._store.put_json(self.key_for(file), document)

    def delete(self, file: FileToLand) -> None:
        self._store.delete(self.key_for(file))


class _CheckpointWriter:
    """Writes the newest checkpoint of one file in the background; a newer one replaces an unwritten one."""

    def __init__(self, checkpoints: Checkpoints, file: FileToLand, interval: float) -> None:
        self._checkpoints, self._file, self._interval = checkpoints, file, interval
        self._cond = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {file.path}", daemon=True)
        self._thread.start()

    def offer(self, document: dict[str, Any]) -> None:
        with self._cond:
            self._pending = document
            self._cond.notify_all()

    def close(self) -> None:
        """Write what is pending, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        written = 0.0
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                # Coalesce: wait out the interval (unless closing), taking the newest document then.
                while not self._closing and time.monotonic() - written < self._interval:
                    self._cond.wait(self._interval - (time.monotonic() - written))
                document, self._pending = self._pending, None
                if document is None:
                    return
            written = time.monotonic()
            try:
                self._checkpoints.save(self._file, document)
            except Exception as exc:  # a lost checkpoint costs a re-fetch on resume, never correctness
                logger.warning("checkpoint not saved", extra={"path": self._file.path, "error": str(exc)})


class _Source:
    """Where a file's bytes come from: its Planet link, and once a request followed it, the storage URL it
    redirected to (ranges go there directly: Planet paces its download endpoint, not its storage)."""

    def __init__(self, links: LinkSource, name: str) -> None:
        self._links, self._name = links, name
        self._lock = threading.Lock()
        self._storage_url: str | None = None
        self.resolved = threading.Event()

    def url(self) -> tuple[str, bool]:
        """The URL to request and whether it is a paced (Planet API) link."""
        with self._lock:
            if self._storage_url is not None:
                return self._storage_url, False
        return self._links.location(self._name), True

    def learned(self, requested: str, answered: str) -> None:
        if answered != requested:
            with self._lock:
                self._storage_url = answered
        self.resolved.set()

    def expired(self, url: str) -> None:
        with self._lock:
            if url == self._storage_url:
                self._storage_url = None  # the signed storage URL expired: follow the link again
                return
            if self._storage_url is not None:
                return
        self._links.refresh(self._name, url)


class _RangesIgnored(Exception):
    """The server answered a range request with the whole file."""


class Transfer:
    """Lands files one call each (callers run several calls at once); parts share ``part_pool``."""

    def __init__(
        self,
        downloader: ResultDownloader,
        store: ResultsStore,
        links: LinkSource,
        checkpoints: Checkpoints,
        part_pool: Executor,
        stop: threading.Event,
        limits: TransferLimits | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.downloader = downloader
        self.store = store
        self.links = links
        self.checkpoints = checkpoints
        self.part_pool = part_pool
        self.stop = stop
        self.limits = limits or TransferLimits()
        self.budget = budget or MemoryBudget(self.limits.buffer_bytes)
        self.buffers = BufferPool(self.limits.buffer_bytes)

    def part_size(self, size: int) -> int:
        return part_size_for(size, self.limits.part_bytes, self.limits.min_part_bytes)

    # --- one file, with its retries ------------------------------------------------------------------------

    def land(self, file: FileToLand) -> LandedFile | None:
        """Land ``file``; None if the stop event came first (what was done is kept for a later call)."""

        def once() -> LandedFile | None:
            try:
                if file.size <= self.part_size(file.size):
                    return self._land_whole(file)
                return self._land_in_parts(file)
            except UploadGone:
                self.checkpoints.delete(file)
                raise

        return self._attempts(file.path, once)

    def probe_size(self, file: FileToLand) -> int | None:
        """The size of a result the manifest does not give, from the answer to a one-byte range request
        (or the Content-Length of a server that ignores ranges). None if the stop event came first."""

        def check(stream: DownloadStream) -> None:
            if stream.status not in (200, 206):
                raise UpstreamError(f"{file.path}: unexpected answer {stream.status}", status=stream.status)

        def read(stream: DownloadStream) -> int:
            total = stream.content_range[2] if stream.status == 206 and stream.content_range else None
            total = total if total is not None else stream.content_length
            if total is None:
                raise UpstreamUnavailable(f"{file.path}: the server did not say how large it is")
            return total

        def once() -> int:
            return self._request(_Source(self.links, file.link_name), (0, 0), check, read)

        return self._attempts(file.path, once)

    def fetch_document(
        self, path: str, link_name: str, max_bytes: int, accept: Callable[[bytes], T]
    ) -> T | None:
        """A small result of unknown size (``manifest.json``), read whole and handed to ``accept``, with the
        same retries as a data file: a transfer that ends early, a 5xx, a reset, a 429 or an expired link is
        retried, and bytes ``accept`` rejects (raising ResultVerificationFailed) are fetched again, up to
        ``file_attempts`` times. None if the stop event came first."""

        def once() -> T:
            return accept(self._read_document(path, _Source(self.links, link_name), max_bytes))

        return self._attempts(path, once)

    def _attempts(self, path: str, once: Callable[[], T]) -> T | None:
        """``once()`` until it succeeds: bytes that did not verify, a transient fault or an expired link cost
        one of ``file_attempts``; a 429 waits for its Retry-After without costing one (at most
        ``rate_limit_waits`` times); a refused URL or another 4xx ends it at once. The error raised names
        ``path``. None if the stop event came first."""
        last_error: Exception | None = None
        attempt = rate_limited = gone = 0
        while attempt < self.limits.file_attempts:
            if self.stop.is_set():
                return None
            attempt += 1
            try:
                return once()
            except UpstreamRateLimited as exc:
                last_error, rate_limited = exc, rate_limited + 1
                if rate_limited > self.limits.rate_limit_waits:
                    break
                attempt -= 1
                time.sleep(min(exc.retry_after or 1.0, self.limits.max_rate_limit_wait))
            except UploadGone as exc:
                # The bucket's lifecycle rule (or someone) aborted the upload: start the file afresh, once.
                last_error, gone = exc, gone + 1
                if gone == 1:
                    attempt -= 1
            except (ResultVerificationFailed, UpstreamUnavailable, LinkExpired) as exc:
                last_error = exc
                logger.warning(
                    "landing attempt failed", extra={"path": path, "attempt": attempt, "error": str(exc)}
                )
                metrics.add_metric(name="LandingRetries", unit="Count", value=1)
            except UpstreamError as exc:  # refused (DownloadRefused) or answered 4xx: retrying cannot help
                raise exc.restated(f"{path}: {exc}") from exc
        assert last_error is not None
        message = f"{path} could not be landed and verified after {attempt} attempts: {last_error}"
        if isinstance(last_error, UpstreamError):
            raise last_error.restated(message) from last_error
        raise ResultVerificationFailed(message) from last_error

    # --- small files: one GET, one PUT ---------------------------------------------------------------------

    def _land_whole(self, file: FileToLand) -> LandedFile | None:
        # Files of a MiB or more borrow a part buffer (reused: no zero-filling, no page faults per file).
        pooled = file.size >= MIB
        held = self.part_size(file.size) if pooled else max(file.size, 1)
        if not self.budget.acquire(held, self.stop.is_set):
            return None
        buffer = self.buffers.take(held) if pooled else bytearray(file.size)
        try:
            view = memoryview(buffer)[: file.size]
            self._fetch(file, _Source(self.links, file.link_name), None, view)
            md5 = hashlib.md5(view, usedforsecurity=False).hexdigest()
            sha256 = hashlib.sha256(view).hexdigest()
            problems = mismatches(file, len(view), md5, sha256)
            if problems:
                raise ResultVerificationFailed(f"{file.path}: {'; '.join(problems)}")
            self.store.put_bytes(
                file.key,
                view,
                metadata={"md5": md5, "sha256": sha256},
                content_type=file.content_type,
                md5=md5,
            )
        finally:
            view.release()
            if pooled:
                self.buffers.give(buffer)
            self.budget.release(held)
        return file.landed(md5, sha256)

    # --- fetching bytes, with range-level retries ----------------------------------------------------------

    def _fetch(self, file: FileToLand, source: _Source, first: int | None, view: memoryview) -> None:
        """Fill ``view`` with the file's bytes from ``first`` (None: the whole file, no Range header)."""
        byte_range = None if first is None else (first, first + len(view) - 1)

        def read(stream: DownloadStream) -> None:
            got = stream.read_into(view)
            if got < len(view):
                start = first or 0
                raise _ended_early(
                    f"{file.path}: transfer of bytes {start}-{start + len(view) - 1} ended after {got} bytes"
                )
            if first is None and stream.has_more():
                raise ResultVerificationFailed(f"{file.path}: more bytes than the manifest's {file.size}")

        self._request(source, byte_range, lambda stream: _check_answer(file, stream, first, len(view)), read)

    def _read_document(self, path: str, source: _Source, max_bytes: int) -> bytes:
        """A whole result of unknown size, at most ``max_bytes``; shorter than its Content-Length is a
        transfer that ended early (retried like any other)."""

        def check(stream: DownloadStream) -> None:
            if stream.status != 200:
                raise UpstreamError(f"{path}: unexpected answer {stream.status}", status=stream.status)
            if (stream.content_length or 0) > max_bytes:
                raise ResultVerificationFailed(f"{path} is implausibly large ({stream.content_length} bytes)")

        def read(stream: DownloadStream) -> bytes:
            data = bytearray()
            for chunk in stream.chunks():
                data += chunk
                if len(data) > max_bytes:
                    raise ResultVerificationFailed(f"{path} is implausibly large (over {max_bytes} bytes)")
            declared = stream.content_length
            if declared is not None and len(data) != declared:
                raise _ended_early(f"{path}: transfer ended after {len(data)} of {declared} bytes")
            return bytes(data)

        return self._request(source, None, check, read)

    def _request(
        self,
        source: _Source,
        byte_range: tuple[int, int] | None,
        check: Callable[[DownloadStream], None],
        read: Callable[[DownloadStream], T],
    ) -> T:
        """One request, retried on the spot (up to ``range_attempts``) when it ends early, is reset, answers
        5xx or finds its link expired (refreshed first); a 429 waits for its Retry-After. ``check`` vets the
        answer before its URL is remembered for the next ranges, ``read`` consumes the body."""
        last_error: Exception | None = None
        waits = attempt = 0
        while attempt < self.limits.range_attempts:
            attempt += 1
            url, paced = source.url()
            try:
                with self.downloader.open(url, byte_range=byte_range, paced=paced) as stream:
                    check(stream)
                    source.learned(url, stream.url)
                    return read(stream)
            except LinkExpired as exc:
                last_error = exc
                source.expired(url)
            except UpstreamRateLimited as exc:
                last_error, waits = exc, waits + 1
                if waits > self.limits.rate_limit_waits:
                    raise
                attempt -= 1
                time.sleep(min(exc.retry_after or 1.0, self.limits.max_rate_limit_wait))
                continue
            except UpstreamUnavailable as exc:
                last_error = exc
            time.sleep(self.limits.retry_pause_seconds * attempt)
        assert last_error is not None
        raise last_error

    # --- large files: ranged parts in parallel -------------------------------------------------------------

    def _land_in_parts(self, file: FileToLand) -> LandedFile | None:
        part_bytes = self.part_size(file.size)
        run = _PartsRun(self, file, part_bytes)
        if not run.run():
            return None
        md5, sha256 = (digest.hexdigest() for digest in run.digests)
        problems = mismatches(file, file.size, md5, sha256)
        if problems:
            self.store.abort_upload(file.key, run.upload_id)
            self.checkpoints.delete(file)
            raise ResultVerificationFailed(f"{file.path}: {'; '.join(problems)}")
        self.store.complete_upload(file.key, run.upload_id, run.receipts)
        self.checkpoints.delete(file)
        return file.landed(md5, sha256)


def _ended_early(message: str) -> UpstreamUnavailable:
    metrics.add_metric(name="TruncatedDownloads", unit="Count", value=1)
    return UpstreamUnavailable(message)


def _check_answer(file: FileToLand, stream: DownloadStream, first: int | None, length: int) -> None:
    """The server's answer must be the bytes asked for, of a file of the manifest's size."""
    if first is None or stream.status == 200:
        if first not in (None, 0) or (first == 0 and length != file.size):
            raise _RangesIgnored(file.path)
        total = stream.content_length
    else:
        answered = stream.content_range
        if stream.status != 206 or answered is None:
            raise UpstreamError(f"{file.path}: unexpected answer {stream.status} to a range request")
        if answered[:2] != (first, first + length - 1):
            asked = f"{first}-{first + length - 1}"
            raise UpstreamUnavailable(f"{file.path}: asked for bytes {asked}, got {answered}")
        total = answered[2]
    if total is not None and total != file.size:
        raise ResultVerificationFailed(f"{file.path}: size {total} != manifest {file.size}")


@dataclass
class _Part:
    number: int
    length: int
    buffer: bytearray | None = None
    uploaded: dict[str, str] | None = None  # S3's receipt


@dataclass
class _PartsRun:
    """One attempt at one file's multipart upload, from its committed prefix onwards."""

    transfer: Transfer
    file: FileToLand
    part_bytes: int
    upload_id: str = ""
    #: What S3 answered for each committed part (ETag and checksum), parts 1..n in order.
    receipts: list[dict[str, str]] = field(default_factory=list)
    digests: list[StreamDigest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parts_total = -(-self.file.size // self.part_bytes)
        self._cond = threading.Condition()
        self._parts: dict[int, _Part] = {}  # scheduled, not yet committed
        self._hashed: dict[str, int] = {}
        self._states: dict[int, dict[str, str | None]] = {}
        self._error: BaseException | None = None
        self._finished = False
        self._first = 1
        self._resumable = False
        self._writer: _CheckpointWriter | None = None

    @property
    def committed(self) -> int:
        return len(self.receipts)

    def _length(self, number: int) -> int:
        return min(self.part_bytes, self.file.size - (number - 1) * self.part_bytes)

    # --- start or resume -----------------------------------------------------------------------------------

    def _start_or_resume(self) -> None:
        checkpoints, store, file = self.transfer.checkpoints, self.transfer.store, self.file
        saved = checkpoints.load(file)
        if saved is not None:
            fields = ("version", "key", "size", "md5", "sha256", "part_bytes")
            expected = (CHECKPOINT_VERSION, file.key, file.size, file.md5, file.sha256, self.part_bytes)
            same = tuple(saved.get(name) for name in fields) == expected
            states = saved.get("digests") or {}
            if same and saved.get("upload_id") and states.get("md5") and states.get("sha256"):
                try:
                    self.digests = [new_digest("md5", states["md5"]), new_digest("sha256", states["sha256"])]
                except ValueError:
                    self.digests = []
                if self.digests:
                    self.upload_id = str(saved["upload_id"])
                    self.receipts = [dict(receipt) for receipt in saved.get("parts", [])]
                    self._resumable = True
                    logger.info("resuming upload", extra={"path": file.path, "parts_done": self.committed})
                    metrics.add_metric(name="LandingResumedParts", unit="Count", value=self.committed)
                    return
            if saved.get("upload_id") and saved.get("key") == file.key:
                store.abort_upload(file.key, str(saved["upload_id"]))
        self.digests = [new_digest("md5"), new_digest("sha256")]
        self._resumable = all(d.state() is not None for d in self.digests)
        self.upload_id = store.start_upload(file.key, metadata=file.metadata, content_type=file.content_type)
        self.receipts = []
        # Saved before any part: a killed invocation leaves an upload id behind that the next one can find.
        checkpoints.save(file, self._checkpoint({d.name: d.state() for d in self.digests}))

    def _checkpoint(self, states: dict[str, str | None]) -> dict[str, Any]:
        file = self.file
        return {
            "version": CHECKPOINT_VERSION,
            "path": file.path,
            "key": file.key,
            "size": file.size,
            "md5": file.md5,
            "sha256": file.sha256,
            "part_bytes": self.part_bytes,
            "upload_id": self.upload_id,
            "parts": [dict(receipt) for receipt in self.receipts],
            "digests": states if self._resumable else {},
        }

    # --- the run -------------------------------------------------------------------------------------------

    def run(self) -> bool:
        """Fetch, upload and hash the parts after the committed prefix; True when every part is done."""
        self._start_or_resume()
        if self._resumable:
            interval = self.transfer.limits.checkpoint_seconds
            self._writer = _CheckpointWriter(self.transfer.checkpoints, self.file, interval)
        try:
            if self._drive(self._schedule):
                self._drive(self._stream_in_order)
        finally:
            if self._writer is not None:
                self._writer.close()
        if self._error is not None:
            raise self._error
        return self.committed == self.parts_total

    def _drive(self, producer: Callable[[int, list[Future[None]]], None]) -> bool:
        """Run ``producer`` (which schedules the parts) with the hashers; True if the server turned out to
        ignore byte ranges before any part was uploaded (then the caller streams the file instead)."""
        first = self._first = self.committed + 1
        self._error, self._finished = None, False
        self._hashed = {d.name: self.committed for d in self.digests}
        hashers = [
            threading.Thread(target=self._hash, args=(d, first), name=f"{d.name} hasher", daemon=True)
            for d in self.digests
        ]
        for thread in hashers:
            thread.start()
        futures: list[Future[None]] = []
        try:
            producer(first, futures)
        except BaseException as exc:
            self._fail(exc)
        finally:
            wait(futures)
            with self._cond:
                self._finished = True
                self._cond.notify_all()
            for thread in hashers:
                thread.join()
            with self._cond:
                for part in self._parts.values():
                    self.transfer.budget.release(part.length)
                self._parts.clear()
        if isinstance(self._error, _RangesIgnored) and self.committed == first - 1:
            self._error = None
            return True
        return False

    def _cancelled(self) -> bool:
        return self.transfer.stop.is_set() or self._error is not None

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    def _schedule(self, first: int, futures: list[Future[None]]) -> None:
        """Ranged parts, fetched and uploaded by the shared pool, as fast as the memory budget allows."""
        source = _Source(self.transfer.links, self.file.link_name)
        for number in range(first, self.parts_total + 1):
            part = _Part(number, self._length(number))
            if self._cancelled() or not self.transfer.budget.acquire(part.length, self._cancelled):
                return
            with self._cond:
                self._parts[number] = part
            future = self.transfer.part_pool.submit(self._fetch_and_upload, source, part)
            futures.append(future)
            if number == first:
                # Learn the storage URL from the first request before the others go straight to it.
                while not source.resolved.wait(0.05) and not future.done():
                    pass

    def _fetch_and_upload(self, source: _Source, part: _Part) -> None:
        try:
            buffer = self.transfer.buffers.take(part.length)
            self.transfer._fetch(self.file, source, (part.number - 1) * self.part_bytes, memoryview(buffer))
            self._upload(part, buffer)
        except _RangesIgnored as ignored:
            source.resolved.set()
            if part.number == self._first:
                self._fail(ignored)
            else:
                problem = f"{self.file.path}: the server ignored the byte range of part {part.number}"
                self._fail(UpstreamUnavailable(problem))
        except BaseException as exc:
            source.resolved.set()
            self._fail(exc)

    def _upload(self, part: _Part, buffer: bytearray) -> None:
        with self._cond:
            if self._error is not None:
                return
            part.buffer = buffer
            self._cond.notify_all()
        receipt = self.transfer.store.upload_part(self.file.key, self.upload_id, part.number, buffer)
        del buffer
        with self._cond:
            part.uploaded = receipt
            self._settle(part.number)

    def _stream_in_order(self, _first: int, futures: list[Future[None]]) -> None:
        """For a server that ignores Range: read the parts from one GET, in order; upload them in parallel."""
        file, transfer = self.file, self.transfer
        source = _Source(transfer.links, file.link_name)
        url, paced = source.url()
        try:
            with transfer.downloader.open(url, paced=paced) as stream:
                _check_answer(file, stream, None, file.size)
                skip = self.committed * self.part_bytes
                scratch = memoryview(bytearray(min(MIB, max(skip, 1))))
                while skip:
                    got = stream.read_into(scratch[: min(len(scratch), skip)])
                    if not got:
                        raise UpstreamUnavailable(f"{file.path}: transfer ended while skipping landed parts")
                    skip -= got
                for number in range(self.committed + 1, self.parts_total + 1):
                    part = _Part(number, self._length(number))
                    if self._cancelled() or not transfer.budget.acquire(part.length, self._cancelled):
                        return
                    with self._cond:
                        self._parts[number] = part
                    buffer = self.transfer.buffers.take(part.length)
                    if stream.read_into(memoryview(buffer)) != part.length:
                        raise UpstreamUnavailable(f"{file.path}: transfer ended in part {number}")
                    futures.append(transfer.part_pool.submit(self._upload_guarded, part, buffer))
                    del buffer
                if stream.has_more():
                    raise ResultVerificationFailed(f"{file.path}: more bytes than the manifest's {file.size}")
        except LinkExpired:
            source.expired(url)
            raise

    def _upload_guarded(self, part: _Part, buffer: bytearray) -> None:
        try:
            self._upload(part, buffer)
        except BaseException as exc:
            self._fail(exc)

    # --- hashing in order, committing, releasing memory ----------------------------------------------------

    def _hash(self, digest: StreamDigest, number: int) -> None:
        while True:
            with self._cond:
                while not self._ready(number) and not self._finished and self._error is None:
                    self._cond.wait()
                if not self._ready(number):
                    return
                buffer = self._parts[number].buffer
            assert buffer is not None
            digest.update(buffer)
            del buffer
            state = digest.state() if self._resumable else None
            with self._cond:
                self._hashed[digest.name] = number
                self._states.setdefault(number, {})[digest.name] = state
                self._settle(number)
            number += 1

    def _ready(self, number: int) -> bool:
        part = self._parts.get(number)
        return part is not None and part.buffer is not None

    def _settle(self, number: int) -> None:
        """Under the lock: drop what is no longer needed and grow the committed prefix."""
        part = self._parts.get(number)
        if part is not None and part.uploaded is not None and min(self._hashed.values()) >= number:
            if part.buffer is not None and part.length:
                self.transfer.buffers.give(part.buffer)
            part.buffer = None
            self.transfer.budget.release(part.length)
            part.length = 0
        advanced = False
        while True:
            following = self._parts.get(self.committed + 1)
            hashed = min(self._hashed.values())
            if following is None or following.uploaded is None or hashed <= self.committed:
                break
            self.receipts.append(following.uploaded)
            del self._parts[following.number]
            advanced = True
        self._cond.notify_all()
        if advanced and self._writer is not None:
            states = self._states.get(self.committed, {})
            for old in [n for n in self._states if n < self.committed]:
                del self._states[old]
            self._writer.offer(self._checkpoint(dict(states)))
