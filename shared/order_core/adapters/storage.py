"""The results bucket: single PUTs for small files, multipart uploads (parts in any order) for large ones.

Nothing here decides whether a file is correct; the landing service completes an upload only after the
file's digests matched the manifest, so an unverified file never becomes visible.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
#: S3's smallest part (every part but the last), its largest, and its most parts per upload.
S3_MIN_PART_BYTES = 5 * MIB
S3_MAX_PART_BYTES = 5 * 1024 * MIB
MAX_PARTS = 10_000
DEFAULT_PART_BYTES = 16 * MIB
#: Transport checksum of every part of a multipart upload, as s3transfer sends it (S3 keeps a composite
#: CRC32 for the object). Single PUTs carry Content-MD5 instead: the manifest's md5, which S3 checks against
#: the bytes it received, so the stored object is proven equal to the manifest end to end.
CHECKSUM_ALGORITHM = "CRC32"


def part_size_for(size: int, preferred: int = DEFAULT_PART_BYTES, minimum: int = S3_MIN_PART_BYTES) -> int:
    """The part size for a file of ``size`` bytes: ``preferred``, or larger (in whole MiB) when the file would
    otherwise need more than 10,000 parts. A 100 GiB file gets 16 MiB parts, a 1 TiB file 105 MiB.

    ``minimum`` is S3's; only tests against a store that accepts smaller parts lower it.
    """
    chosen = max(minimum, preferred)
    needed = -(-size // MAX_PARTS)  # ceiling division
    if needed > chosen:
        chosen = -(-needed // MIB) * MIB
    return min(S3_MAX_PART_BYTES, chosen)


class BufferBody:
    """A read-only, seekable file over a buffer, so an upload sends the landing's own buffer without copying
    it whole (botocore takes bytes or files, not memoryviews; a bytes copy would double the memory in flight).

    ``read`` hands out at least ``BLOCK`` bytes at a time whatever size is asked for: the HTTP layer asks for
    16 KiB, and a 16 MiB part in 16 KiB calls costs more CPU than the rest of its upload.
    """

    BLOCK = 1024 * 1024

    def __init__(self, buffer: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(buffer).cast("B")
        self._position = 0

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            end = len(self._view)
        else:
            end = min(len(self._view), self._position + max(size, self.BLOCK))
        chunk = self._view[self._position : end].tobytes()
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: len(self._view)}[whence]
        self._position = max(0, min(len(self._view), base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


class UploadGone(Exception):
    """The multipart upload no longer exists (aborted, e.g. by the bucket's lifecycle rule)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class ResultsStore:
    def __init__(self, bucket: str, s3: Any = None, *, max_connections: int = 10) -> None:
        self.bucket = bucket
        self._s3 = s3
        self._max_connections = max_connections

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            config = Config(
                max_pool_connections=self._max_connections,
                # Completing a multi-GB upload can take S3 minutes; botocore's 60 s would cut it off.
                read_timeout=300,
                retries={"mode": "standard", "max_attempts": 5},
                # Over TLS botocore never signs upload bodies (the CRC32 checksum covers them); say so
                # explicitly so a plain-HTTP endpoint (the local stack) is not hashed a second time either.
                s3={"payload_signing_enabled": False},
                # Checksums are chosen per call: CRC32 on parts, Content-MD5 on single PUTs (see above).
                request_checksum_calculation="when_required",
            )
            self._s3 = boto3.session.Session().client("s3", config=config)
        return self._s3

    # --- reading back --------------------------------------------------------------------------------------

    def head(self, key: str) -> StoredObject | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(key, int(head["ContentLength"]), dict(head.get("Metadata", {})))

    def read_range(self, key: str, first: int, last: int) -> bytes:
        """Bytes ``first``..``last`` (inclusive) of an object."""
        response = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}")
        return bytes(response["Body"].read())

    def metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of an object plus its ``content-length``, or None if it does not exist."""
        found = self.head(key)
        return None if found is None else {**found.metadata, "content-length": str(found.size)}

    def sizes_under(self, prefix: str) -> dict[str, int]:
        """Key → size of every object under ``prefix``."""
        sizes: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                sizes[item["Key"]] = int(item["Size"])
        return sizes

    # --- writing -------------------------------------------------------------------------------------------

    def put_bytes(
        self,
        key: str,
        body: bytes | bytearray | memoryview,
        *,
        metadata: dict[str, str],
        content_type: str,
        md5: str | None = None,
    ) -> None:
        """One PUT. With ``md5`` (hex) S3 refuses the object unless the bytes it received have that md5;
        without it the body gets a CRC32 transport checksum."""
        checksum = (
            {"ContentMD5": base64.b64encode(bytes.fromhex(md5)).decode()}
            if md5
            else {"ChecksumAlgorithm": CHECKSUM_ALGORITHM}
        )
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body if isinstance(body, bytes) else BufferBody(body),
            Metadata=metadata,
            ContentType=content_type,
            **checksum,
        )

    def start_upload(self, key: str, *, metadata: dict[str, str], content_type: str) -> str:
        return str(
            self.s3.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                Metadata=metadata,
                ContentType=content_type,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )["UploadId"]
        )

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> dict[str, str]:
        """Upload one part; returns what completing the upload needs to name it (ETag and checksum)."""
        try:
            response = self.s3.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body if isinstance(body, bytes) else BufferBody(body),
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )
        except Exception as exc:
            if _error_code(exc) == "NoSuchUpload":
                raise UploadGone(key) from exc
            raise
        receipt = {"ETag": str(response["ETag"])}
        checksum = response.get(f"Checksum{CHECKSUM_ALGORITHM}")
        if checksum:
            receipt[f"Checksum{CHECKSUM_ALGORITHM}"] = str(checksum)
        return receipt

    def complete_upload(self, key: str, upload_id: str, receipts: list[dict[str, str]]) -> None:
        """Publish the object from its parts 1..n, named by the receipts ``upload_part`` returned."""
        parts = [{**receipt, "PartNumber": number} for number, receipt in enumerate(receipts, start=1)]
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception as exc:
            if _error_code(exc) == "NoSuchUpload":
                raise UploadGone(key) from exc
            raise

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; one that is already gone is fine."""
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            if _error_code(exc) not in ("NoSuchUpload", "404"):
                raise

    # --- small JSON documents ------------------------------------------------------------------------------

    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, indent=2).encode()
        self.put_bytes(
            key,
            body,
            metadata={},
            content_type="application/json",
            md5=hashlib.md5(body, usedforsecurity=False).hexdigest(),
        )

    def get_json(self, key: str) -> Any | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return json.loads(body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def presigned_get(self, key: str, *, expires_in: int, filename: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=expires_in,
            )
        )


class RangedObject(io.RawIOBase):
    """A read-only, seekable file over a stored object, read with ranged GETs of ``block_bytes`` each.

    Python's ``zipfile`` needs a seekable file (the central directory is at the end); this gives it one
    without holding the object: memory is one block, whatever the object's size.
    """

    def __init__(self, store: ResultsStore, key: str, size: int, block_bytes: int = 8 * MIB) -> None:
        super().__init__()
        self._store, self._key, self._size, self._block_bytes = store, key, size, block_bytes
        self._position = 0
        self._block_start = 0
        self._block = b""
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self._size:
            offset = self._position - self._block_start
            if not 0 <= offset < len(self._block):
                last = min(self._size, self._position + self._block_bytes) - 1
                self._block = b""  # drop the old block before fetching the next one
                self._block = self._store.read_range(self._key, self._position, last)
                self._block_start, offset = self._position, 0
                self.requests += 1
                if not self._block:
                    break
            chunk = memoryview(self._block)[offset : offset + len(view) - done]
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._position += len(chunk)
        return done
