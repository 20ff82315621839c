"""Verifying a landed zip archive member by member, streamed from the results bucket in constant memory.

Planet delivers ``delivery.archive_type: zip`` orders as zip archives (one per bundle, or one for the whole
order with ``single_archive``) with a ``manifest.json`` inside each, listing the archive's files with their
sizes and digests. The archive itself lands as any result (verified against the order's manifest.json when
that lists its digests); this module then reads it back through ranged GETs (``RangedObject``) and checks
every member: the zip's own CRC-32 of each (``zipfile`` raises on a mismatch at the member's end), and the
size, md5 and sha256 the inner manifest gives. Nothing is extracted: the archive stays as Planet made it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
import zlib
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from order_core.adapters.storage import MIB, RangedObject, ResultsStore
from order_core.errors import ResultVerificationFailed
from order_core.models.planet import Manifest

INNER_MANIFEST = "manifest.json"
MAX_INNER_MANIFEST_BYTES = 64 * MIB
#: Bytes read from a member at a time (decompressed).
READ_BYTES = MIB
#: ``<item id>_metadata.json`` members up to this size are kept (geometry and time) for the STAC catalog.
MAX_ITEM_METADATA_BYTES = MIB


class ArchiveStopped(Exception):
    """The stop event came while reading the archive: nothing was decided, a later call starts again."""


def is_archive(path: str) -> bool:
    return path.lower().endswith(".zip")


class ArchiveMember(BaseModel):
    path: str
    size: int
    crc32: str
    md5: str
    sha256: str
    media_type: str | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
    #: For Planet's ``<item id>_metadata.json``: its geometry and ``properties.acquired``.
    item_metadata: dict[str, Any] | None = None


class ArchiveReport(BaseModel):
    """What an archive was found to hold; saved once verified (the next invocation trusts it)."""

    version: int = 1
    key: str
    size: int
    md5: str
    sha256: str
    #: Whether the inner manifest listed digests the members were checked against.
    inner_manifest: bool
    members: list[ArchiveMember]


def verify_archive(
    store: ResultsStore,
    key: str,
    size: int,
    md5: str,
    sha256: str,
    *,
    block_bytes: int = 8 * MIB,
    stop: threading.Event | None = None,
) -> ArchiveReport:
    """Read the archive at ``key`` back and check each member; raises ResultVerificationFailed naming it."""
    name = key.rsplit("/", 1)[-1]
    source = RangedObject(store, key, size, block_bytes)
    try:
        with zipfile.ZipFile(source) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            listed = _inner_manifest(archive, name)
            members = [_check_member(archive, info, listed.get(info.filename), name, stop) for info in infos]
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a bad CRC, a bad header, damaged data
        raise ResultVerificationFailed(f"{name} is not a valid zip archive: {exc}") from exc
    except (NotImplementedError, RuntimeError) as exc:  # an unsupported compression or an encrypted member
        raise ResultVerificationFailed(f"{name} cannot be read: {exc}") from exc
    held = {member.path for member in members}
    missing = sorted(path for path in listed if path not in held)
    if missing:
        raise ResultVerificationFailed(
            f"{name}: its manifest.json lists {len(missing)} file(s) the archive does not hold: "
            + ", ".join(missing[:3])
        )
    return ArchiveReport(
        key=key, size=size, md5=md5, sha256=sha256, inner_manifest=bool(listed), members=members
    )


def _inner_manifest(archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
    """The inner manifest's entries by path ({} when the archive has none)."""
    try:
        info = archive.getinfo(INNER_MANIFEST)
    except KeyError:
        return {}
    if info.file_size > MAX_INNER_MANIFEST_BYTES:
        raise ResultVerificationFailed(f"{name}: its manifest.json is implausibly large")
    try:
        manifest = Manifest.model_validate_json(archive.read(info))
    except ValidationError as exc:
        raise ResultVerificationFailed(f"{name}: its manifest.json is not valid") from exc
    return {entry.path: entry for entry in manifest.files}


def _check_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Any, name: str, stop: threading.Event | None
) -> ArchiveMember:
    path = info.filename
    if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise ResultVerificationFailed(f"{name}: member {path!r} has a path that would escape its folder")
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    keep = path.endswith("_metadata.json") and info.file_size <= MAX_ITEM_METADATA_BYTES
    kept = bytearray()
    with archive.open(info) as member:  # the CRC-32 is checked when the member's last byte is read
        while chunk := member.read(READ_BYTES):
            if stop is not None and stop.is_set():
                raise ArchiveStopped(name)
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
            if keep and len(kept) <= MAX_ITEM_METADATA_BYTES:
                kept += chunk
    found = ArchiveMember(
        path=path,
        size=size,
        crc32=f"{info.CRC:08x}",
        md5=md5.hexdigest(),
        sha256=sha256.hexdigest(),
        media_type=entry.media_type if entry is not None else None,
        annotations=dict(entry.annotations) if entry is not None else {},
        item_metadata=item_metadata(bytes(kept)) if keep else None,
    )
    if entry is not None:
        problems = []
        if entry.size is not None and entry.size != size:
            problems.append(f"size {size} != its manifest's {entry.size}")
        if entry.digests.md5 and entry.digests.md5 != found.md5:
            problems.append(f"md5 {found.md5} != its manifest's {entry.digests.md5}")
        if entry.digests.sha256 and entry.digests.sha256 != found.sha256:
            problems.append(f"sha256 {found.sha256} != its manifest's {entry.digests.sha256}")
        if problems:
            raise ResultVerificationFailed(f"{name}: member {path}: {'; '.join(problems)}")
    return found


def item_metadata(data: bytes) -> dict[str, Any] | None:
    """Geometry and acquisition time of Planet's item metadata (a GeoJSON Feature), if it is one."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    properties = document.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    return {"geometry": document.get("geometry"), "properties": {"acquired": properties.get("acquired")}}
