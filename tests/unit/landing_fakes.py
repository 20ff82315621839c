"""In-memory stand-ins for what landing talks to: Planet's links and storage, the results bucket.

No sockets: the unit tests of ``order_core.services.transfer`` and ``landing`` drive these. Faults are
scripted per path (corrupt, truncate, refuse, fail, ignore ranges, any error status) and every request is
recorded, so a test can say which bytes were fetched again after a failure or a resume.

They act as the fake Planet's faults (``local/planet_fake/faults.py``) do through the real downloader:
``corrupt`` inverts the middle byte (same length, other digests; in JSON, a byte that is not UTF-8);
``truncate`` sends the first half and closes the connection, which a read into a buffer sees as a short
body and a chunked read as a broken connection (UpstreamUnavailable), as http.client and urllib3 do;
``status`` answers an error whose status and body the real ``downloads.raise_for_status`` maps.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from order_core.adapters.downloads import raise_for_status
from order_core.adapters.storage import StoredObject, UploadGone
from order_core.errors import DownloadRefused, LinkExpired, UpstreamRateLimited, UpstreamUnavailable

API = "https://api.planet.com/download/"
STORAGE = "https://storage.example.com/"


def content(size: int, seed: int = 7) -> bytes:
    """Deterministic bytes that differ at every offset (so a misplaced range changes the digest)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big") + block[:64]).digest() + block[: 64 * 1024 - 32]
        counter += 1
    return bytes(out[:size])


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()


class _Unseekable(io.RawIOBase):
    """A sink ``zipfile`` cannot seek in, so it writes each member's sizes and CRC in a data descriptor
    after its data (as a streaming zip writer, or Planet's, may)."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        self.data += chunk
        return len(chunk)


def zip_of(
    members: dict[str, bytes],
    *,
    inner_manifest: dict[str, Any] | None = None,
    compression: int = zipfile.ZIP_STORED,
    data_descriptors: bool = False,
) -> bytes:
    """A zip archive of ``members`` (in order), with ``inner_manifest`` as its ``manifest.json`` when given.

    Stored members by default: flipping a byte of their data changes their CRC-32, not the zip's structure.
    """
    sink: Any = _Unseekable() if data_descriptors else io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=compression) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
        if inner_manifest is not None:
            archive.writestr("manifest.json", json.dumps(inner_manifest))
    return bytes(sink.data) if data_descriptors else sink.getvalue()


def inner_manifest_for(members: dict[str, bytes], annotations: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Planet's manifest.json inside an archive: each member's size, digests, media type and annotations."""
    files = []
    for path, data in members.items():
        md5, sha256 = digests(data)
        files.append(
            {
                "path": path,
                "media_type": "application/json" if path.endswith(".json") else "image/tiff",
                "size": len(data),
                "digests": {"md5": md5, "sha256": sha256},
                "annotations": annotations.get(path, {}),
            }
        )
    return {"name": "", "files": files}


@dataclass
class Fault:
    kind: str  # corrupt | truncate | expire | unavailable | rate_limited | refuse | status
    path: str
    times: int = 1
    on: str = "any"  # link | storage | any
    retry_after: float | None = None
    status: int = 0  # kind "status": the answer's status and body
    body: bytes = b""


class ErrorAnswer:
    """An error answer as ``requests`` hands it over (status, headers, an unread body)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status_code, self.headers = status, headers or {}
        self.raw = self
        self._body = body

    def read(self, amount: int, decode_content: bool = False) -> bytes:
        return self._body[:amount]

    def close(self) -> None:
        pass


@dataclass
class Request:
    url: str
    path: str
    byte_range: tuple[int, int] | None
    paced: bool

    @property
    def storage(self) -> bool:
        return self.url.startswith(STORAGE)


class FakeStream:
    def __init__(
        self, status: int, url: str, body: bytes, *, declared: int, total: int | None, first: int
    ) -> None:
        self.status, self.url = status, url
        self._body, self._declared, self._total, self._first = body, declared, total, first
        self._position = 0

    @property
    def content_length(self) -> int | None:
        return self._declared

    @property
    def content_range(self) -> tuple[int, int, int | None] | None:
        if self.status != 206:
            return None
        return self._first, self._first + self._declared - 1, self._total

    def read_into(self, view: memoryview) -> int:
        chunk = self._body[self._position : self._position + len(view)]
        view[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def has_more(self) -> bool:
        return self._position < len(self._body)

    def chunks(self) -> Iterator[bytes]:
        while self._position < len(self._body):
            chunk = self._body[self._position : self._position + 65536]
            self._position += len(chunk)
            yield chunk
        if self._position < self._declared:  # urllib3 enforces Content-Length on a connection that closed
            raise UpstreamUnavailable(
                "download interrupted: ProtocolError: ('Connection broken: IncompleteRead')"
            )


class FakePlanetFiles:
    """Planet's download links (``API…?v=n``) and the signed storage URLs they redirect to (``STORAGE…?s=n``).

    A link or storage URL of an older version than the current one is expired (401 / 403).
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.link_version: dict[str, int] = dict.fromkeys(files, 1)
        self.storage_version: dict[str, int] = dict.fromkeys(files, 1)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.ignore_ranges = False
        self.reported_size: dict[str, int] = {}
        self.redirect_to: str | None = None  # a storage root to redirect to instead (for refusals)
        self._lock = threading.Lock()

    def link(self, path: str) -> str:
        return f"{API}{path}?v={self.link_version[path]}"

    def expire_links(self, path: str) -> None:
        self.link_version[path] += 1
        self.storage_version[path] += 1

    def _take(self, path: str, hops: tuple[str, ...]) -> Fault | None:
        """The oldest fault for this path on one of these hops ("link", "storage"), one use consumed."""
        with self._lock:
            for fault in self.faults:
                if fault.path in path and (fault.on == "any" or fault.on in hops) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def ranges_fetched(self, path: str) -> list[tuple[int, int] | None]:
        return [r.byte_range for r in self.requests if r.path == path and (r.storage or r.byte_range)]


class FakeDownloader:
    """Stands in for ``ResultDownloader``: same ``open`` contract, answers from ``FakePlanetFiles``."""

    def __init__(self, planet: FakePlanetFiles) -> None:
        self.planet = planet

    def check_url(self, url: str) -> None:  # pragma: no cover - the policy has its own tests
        pass

    @contextmanager
    def open(
        self, url: str, *, byte_range: tuple[int, int] | None = None, paced: bool = True
    ) -> Iterator[FakeStream]:
        planet = self.planet
        parts = urlsplit(url)
        path = parts.path.split("/", 2)[2] if url.startswith(API) else parts.path.lstrip("/")
        with planet._lock:
            planet.requests.append(Request(url, path, byte_range, paced))
        query = parse_qs(parts.query)
        on = "link" if url.startswith(API) else "storage"
        if on == "link" and int(query["v"][0]) != planet.link_version[path]:
            raise LinkExpired("download link refused with 401", status=401)
        if on == "storage" and int(query["s"][0]) != planet.storage_version[path]:
            raise LinkExpired("download link refused with 403", status=403)
        # A link redirects to storage: faults of either hop apply; a storage URL is the storage hop alone.
        fault = planet._take(path, ("link", "storage") if on == "link" else ("storage",))
        if fault and fault.kind == "expire":
            raise LinkExpired(f"download link refused with {401 if on == 'link' else 403}", status=403)
        if fault and fault.kind == "unavailable":
            raise UpstreamUnavailable("download answered 503", status=503)
        if fault and fault.kind == "rate_limited":
            raise UpstreamRateLimited("download rate limited", retry_after=fault.retry_after)
        if fault and fault.kind == "status":
            raise_for_status(ErrorAnswer(fault.status, fault.body))
        if fault and fault.kind == "refuse":
            raise DownloadRefused(
                "refusing to connect to 'storage.example.com': 169.254.169.254 is link-local"
            )
        final = (
            url
            if on == "storage"
            else f"{planet.redirect_to or STORAGE}{path}?s={planet.storage_version[path]}"
        )
        data = planet.files[path]
        total = planet.reported_size.get(path, len(data))
        if byte_range is None or planet.ignore_ranges:
            status, first, body = 200, 0, data
        else:
            status, first = 206, byte_range[0]
            body = data[byte_range[0] : byte_range[1] + 1]
        declared = len(body) if status == 206 else total
        if fault and fault.kind == "corrupt":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        if fault and fault.kind == "truncate":
            body = body[: len(body) // 2]
        yield FakeStream(status, final, body, declared=declared, total=total, first=first)


class FakeLinks:
    """The LinkSource landing uses: refreshing stands for GETting the upstream order again."""

    def __init__(self, planet: FakePlanetFiles) -> None:
        self.planet = planet
        self.refreshes = 0

    def location(self, name: str) -> str:
        return self.planet.link(name)

    def refresh(self, name: str, stale: str) -> str:
        self.refreshes += 1
        return self.planet.link(name)


class Killed(Exception):
    """Lambda stopped the process: nothing after this point happens."""


@dataclass
class Bucket:
    """The bucket's contents, shared by every ``FakeStore`` looking at it (one per 'invocation')."""

    objects: dict[str, StoredObject] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    content_md5: dict[str, str | None] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    aborted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeStore:
    """Stands in for ``ResultsStore``. ``kill_after_parts``: the Nth UploadPart kills the invocation, after
    which this store refuses everything (a dead process does nothing more)."""

    def __init__(
        self, bucket: Bucket | None = None, *, kill_after_parts: int | None = None, part_seconds: float = 0
    ) -> None:
        self.bucket_state = bucket or Bucket()
        self.bucket = "results"
        self.kill_after_parts = kill_after_parts
        self.part_seconds = part_seconds  # how long one UploadPart takes (S3 is not instantaneous)
        self.parts_uploaded = 0
        self.dead = False
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        if self.dead:
            raise Killed(name)
        self.calls.append(name)

    # reading
    def head(self, key: str) -> StoredObject | None:
        self._call("head")
        return self.bucket_state.objects.get(key)

    def sizes_under(self, prefix: str) -> dict[str, int]:
        self._call("list")
        return {k: o.size for k, o in self.bucket_state.objects.items() if k.startswith(prefix)}

    def read_range(self, key: str, first: int, last: int) -> bytes:
        self._call("get_range")
        return self.bucket_state.bodies[key][first : last + 1]

    def get_json(self, key: str) -> Any | None:

        self._call("get_json")
        body = self.bucket_state.bodies.get(key)
        return None if body is None else json.loads(body)

    # writing
    def put_bytes(
        self,
        key: str,
        body: bytes | bytearray,
        *,
        metadata: dict[str, str],
        content_type: str,
        md5: str | None = None,
    ) -> None:
        self._call("put")
        data = bytes(body)
        if md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
            raise AssertionError("BadDigest: Content-MD5 does not match the body")
        with self.bucket_state.lock:
            self.bucket_state.objects[key] = StoredObject(key, len(data), dict(metadata))
            self.bucket_state.bodies[key] = data
            self.bucket_state.content_md5[key] = md5

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, json.dumps(document).encode(), metadata={}, content_type="application/json")

    def delete(self, key: str) -> None:
        self._call("delete")
        with self.bucket_state.lock:
            self.bucket_state.objects.pop(key, None)
            self.bucket_state.bodies.pop(key, None)

    def start_upload(self, key: str, *, metadata: dict[str, str], content_type: str) -> str:
        self._call("start_upload")
        with self.bucket_state.lock:
            upload_id = f"upload-{len(self.bucket_state.uploads) + 1}"
            self.bucket_state.uploads[upload_id] = {"key": key, "parts": {}, "metadata": dict(metadata)}
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> dict[str, str]:
        self._call("upload_part")
        if self.part_seconds:
            threading.Event().wait(self.part_seconds)
        with self.bucket_state.lock:
            upload = self.bucket_state.uploads.get(upload_id)
            if upload is None:
                raise UploadGone(key)
            self.parts_uploaded += 1
            if self.kill_after_parts is not None and self.parts_uploaded > self.kill_after_parts:
                self.dead = True
                raise Killed("upload_part")
            data = bytes(body)
            upload["parts"][number] = data
        return {"ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"', "ChecksumCRC32": "x"}

    def complete_upload(self, key: str, upload_id: str, receipts: list[dict[str, str]]) -> None:
        self._call("complete")
        with self.bucket_state.lock:
            upload = self.bucket_state.uploads.pop(upload_id, None)
            if upload is None:
                raise UploadGone(key)
            parts = upload["parts"]
            if sorted(parts) != list(range(1, len(receipts) + 1)):
                raise AssertionError(f"InvalidPart: have {sorted(parts)}, completing {len(receipts)}")
            for number, receipt in enumerate(receipts, start=1):
                expected = f'"{hashlib.md5(parts[number], usedforsecurity=False).hexdigest()}"'
                if receipt["ETag"] != expected:
                    raise AssertionError(f"InvalidPart: part {number} ETag")
            data = b"".join(parts[n] for n in range(1, len(receipts) + 1))
            self.bucket_state.objects[key] = StoredObject(key, len(data), upload["metadata"])
            self.bucket_state.bodies[key] = data

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call("abort")
        with self.bucket_state.lock:
            self.bucket_state.uploads.pop(upload_id, None)
            self.bucket_state.aborted.append(upload_id)
