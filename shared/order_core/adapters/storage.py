"""The results bucket: streaming multipart uploads that only become visible once verified."""

from __future__ import annotations

import json
from typing import Any

from order_core.adapters.aws import client

MIN_PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000


def part_size_for(size: int) -> int:
    """A part size that keeps any file, however large, within S3's 10,000-part limit."""
    needed = -(-size // MAX_PARTS)  # ceiling division
    return max(MIN_PART_BYTES, -(-needed // (1024 * 1024)) * 1024 * 1024)


class MultipartWriter:
    """Writes one object part by part; ``complete`` publishes it, ``abort`` leaves nothing behind.

    Memory is bounded by one part. A file smaller than one part is sent with a single PutObject.
    """

    def __init__(
        self, s3: Any, bucket: str, key: str, *, part_size: int, metadata: dict[str, str], content_type: str
    ) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._part_size = part_size
        self._metadata, self._content_type = metadata, content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            self._flush(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]

    def _flush(self, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, Metadata=self._metadata, ContentType=self._content_type
            )["UploadId"]
        number = len(self._parts) + 1
        etag = self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
        )["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})

    def complete(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                Metadata=self._metadata,
                ContentType=self._content_type,
            )
            return
        if self._buffer:
            self._flush(bytes(self._buffer))
            self._buffer.clear()
        self._s3.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            self._upload_id = None


class ResultsStore:
    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = client("s3")
        return self._s3

    def writer(
        self,
        key: str,
        *,
        size_hint: int,
        metadata: dict[str, str],
        content_type: str = "application/octet-stream",
    ) -> MultipartWriter:
        return MultipartWriter(
            self.s3,
            self.bucket,
            key,
            part_size=part_size_for(size_hint),
            metadata=metadata,
            content_type=content_type,
        )

    def metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of an object, or None if it does not exist."""
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return {**head.get("Metadata", {}), "content-length": str(head["ContentLength"])}

    def put_json(self, key: str, document: Any) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            ContentType="application/json",
            Body=json.dumps(document, indent=2).encode(),
        )

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
