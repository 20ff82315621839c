"""Landing results: stream each file from Planet into the results bucket, verified against manifest.json.

A file counts as landed only when its size, md5 and sha256 equal the manifest's; until then its multipart
upload is not completed, so a wrong file is never visible in the bucket. Files already landed with
matching digests are skipped, so calling ``land`` again resumes where the last call stopped.
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Callable

from order_core.adapters.downloads import ResultDownloader
from order_core.adapters.orders_repo import OrdersRepository
from order_core.adapters.planet_client import PlanetClient
from order_core.adapters.storage import ResultsStore
from order_core.errors import LinkExpired, ResultVerificationFailed, UpstreamRateLimited, UpstreamUnavailable
from order_core.models.order import LandedFile, LandingProgress, OrderRecord, Phase, utcnow
from order_core.models.planet import Manifest, ManifestFile, OrderState, ResultLink
from order_core.observability import bind_order, logger, metrics

MANIFEST = "manifest.json"
DELIVERY = "delivery.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
ATTEMPTS_PER_FILE = 3
#: How many 429s one file may wait out (each for its Retry-After, at most MAX_RATE_LIMIT_WAIT seconds).
RATE_LIMIT_WAITS_PER_FILE = 10
MAX_RATE_LIMIT_WAIT = 10.0


def safe_relative_path(result_name: str) -> str:
    """The path of a result inside its order folder, refusing anything that could escape it.

    Planet names results ``<upstream order id>/<ItemType>/<file>``; the first segment is dropped.
    """
    parts = result_name.replace("\\", "/").split("/", 1)
    relative = parts[1] if len(parts) == 2 else parts[0]
    normalised = posixpath.normpath(relative)
    if (
        not relative
        or relative.startswith("/")
        or normalised.startswith("..")
        or normalised == "."
        or any(segment in ("", "..") for segment in relative.split("/"))
    ):
        raise ResultVerificationFailed(f"unsafe result path {result_name!r}")
    return normalised


class LandingService:
    def __init__(
        self,
        repo: OrdersRepository,
        planet: PlanetClient,
        downloader: ResultDownloader,
        store: ResultsStore,
        prefix: str,
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._downloader = downloader
        self._store = store
        self._prefix = prefix.strip("/")

    def order_prefix(self, record: OrderRecord) -> str:
        return f"{self._prefix}/{record.tenant}/{record.order_id}"

    def land(self, order_id: str, seconds_left: Callable[[], float]) -> LandingProgress:
        """Land what is not landed yet; returns complete=False when time ran short (call again)."""
        record = self._repo.get(order_id)
        if record is None or record.upstream_order_id is None:
            raise ResultVerificationFailed(f"order {order_id} has nothing to land")
        bind_order(record.order_id, record.tenant)
        if record.native_delivery or record.upstream_state not in (OrderState.success, OrderState.partial):
            return LandingProgress(complete=True, landed_files=0)

        upstream = self._planet.get_order(record.upstream_order_id)
        links = [link for link in (upstream.links.results or []) if link.delivery in (None, "success")]
        manifest_link = next((lk for lk in links if lk.name.endswith("/" + MANIFEST)), None)
        if manifest_link is None or not manifest_link.location:
            raise ResultVerificationFailed(
                "Planet listed no manifest.json for this order; nothing can be verified"
            )
        manifest_bytes = self._fetch_small(manifest_link)
        manifest = Manifest.model_validate_json(manifest_bytes)
        expected = {entry.path: entry for entry in manifest.files}

        landed = {item.path: item for item in record.results}
        base = self.order_prefix(record)
        for link in links:
            if link is manifest_link:
                continue
            path = safe_relative_path(link.name)
            if path in landed:
                continue
            entry = expected.get(path)
            if entry is None or entry.size is None or not entry.digests.md5 or not entry.digests.sha256:
                raise ResultVerificationFailed(
                    f"{path} is not listed in manifest.json with its size and digests"
                )
            if seconds_left() <= 0:
                self._save(record, landed)
                return LandingProgress(complete=False, landed_files=len(landed))
            landed[path] = self._already_landed(f"{base}/{path}", entry) or self._land_file(
                record, link, path, entry, f"{base}/{path}"
            )
            self._save(record, landed)

        self._store_bytes(f"{base}/{MANIFEST}", manifest_bytes)
        delivery_key = f"{base}/{DELIVERY}"
        self._store.put_json(
            delivery_key,
            {
                "order_id": record.order_id,
                "name": record.name,
                "tenant": record.tenant,
                "upstream_order_id": record.upstream_order_id,
                "landed_on": utcnow().isoformat(),
                "bucket": self._store.bucket,
                "prefix": base,
                "files": [item.model_dump() for item in landed.values()],
            },
        )
        manifest_file = LandedFile(
            path=MANIFEST,
            key=f"{base}/{MANIFEST}",
            size=len(manifest_bytes),
            md5=hashlib.md5(manifest_bytes).hexdigest(),  # noqa: S324 - a checksum
            sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            media_type="application/json",
        )
        files = [manifest_file, *landed.values()]
        self._repo.update(
            order_id,
            {
                "results": files,
                "landed_bytes": sum(f.size for f in landed.values()),
                "delivery_key": delivery_key,
                "last_modified": utcnow(),
            },
        )
        logger.info("results landed", extra={"files": len(landed)})
        return LandingProgress(complete=True, landed_files=len(landed))

    def _save(self, record: OrderRecord, landed: dict[str, LandedFile]) -> None:
        self._repo.update(
            record.order_id,
            {
                "results": list(landed.values()),
                "last_modified": utcnow(),
                "last_message": f"Landed {len(landed)} files",
            },
            only_in_phases=(Phase.DELIVERING,),
        )

    def _already_landed(self, key: str, entry: ManifestFile) -> LandedFile | None:
        meta = self._store.metadata(key)
        if (
            meta
            and meta.get("md5") == entry.digests.md5
            and meta.get("sha256") == entry.digests.sha256
            and meta.get("content-length") == str(entry.size)
        ):
            return LandedFile(
                path=entry.path,
                key=key,
                size=entry.size,
                md5=entry.digests.md5,
                sha256=entry.digests.sha256,
                media_type=entry.media_type,
            )
        return None

    def _land_file(
        self, record: OrderRecord, link: ResultLink, path: str, entry: ManifestFile, key: str
    ) -> LandedFile:
        last_error: Exception | None = None
        attempt, rate_limited = 0, 0
        while attempt < ATTEMPTS_PER_FILE:
            attempt += 1
            try:
                landed = self._stream_once(link, path, entry, key)
            except UpstreamRateLimited as exc:
                # Planet's download limit is per key; waiting out a short Retry-After beats failing the order.
                last_error, rate_limited = exc, rate_limited + 1
                if rate_limited <= RATE_LIMIT_WAITS_PER_FILE:
                    attempt -= 1
                    time.sleep(min(exc.retry_after or 1.0, MAX_RATE_LIMIT_WAIT))
            except LinkExpired as exc:
                last_error = exc
                link = self._fresh_link(record, link)
            except (ResultVerificationFailed, UpstreamUnavailable) as exc:
                last_error = exc
                logger.warning(
                    "landing attempt failed", extra={"path": path, "attempt": attempt, "error": str(exc)}
                )
                metrics.add_metric(name="LandingRetries", unit="Count", value=1)
            else:
                return landed
        raise ResultVerificationFailed(
            f"{path} could not be landed and verified after {ATTEMPTS_PER_FILE} attempts: {last_error}"
        )

    def _stream_once(self, link: ResultLink, path: str, entry: ManifestFile, key: str) -> LandedFile:
        if not link.location:
            raise ResultVerificationFailed(f"{path} has no download location")
        md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0  # noqa: S324 - md5 is Planet's checksum
        writer = self._store.writer(
            key,
            size_hint=entry.size,
            content_type=entry.media_type or "application/octet-stream",
            metadata={"md5": entry.digests.md5, "sha256": entry.digests.sha256},
        )
        try:
            with self._downloader.open(link.location) as stream:
                for chunk in stream.chunks():
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
                    if size > (entry.size or 0):
                        raise ResultVerificationFailed(f"{path}: more bytes than the manifest's {entry.size}")
                    writer.write(chunk)
            problems = _mismatches(entry, size, md5.hexdigest(), sha256.hexdigest())
            if problems:
                raise ResultVerificationFailed(f"{path}: {'; '.join(problems)}")
            writer.complete()
        except BaseException:
            writer.abort()
            raise
        return LandedFile(
            path=path,
            key=key,
            size=size,
            md5=md5.hexdigest(),
            sha256=sha256.hexdigest(),
            media_type=entry.media_type,
        )

    def _fresh_link(self, record: OrderRecord, stale: ResultLink) -> ResultLink:
        """Planet regenerates links on every GET of the order."""
        assert record.upstream_order_id is not None
        upstream = self._planet.get_order(record.upstream_order_id)
        for link in upstream.links.results or []:
            if link.name == stale.name:
                return link
        raise ResultVerificationFailed(f"{stale.name} is no longer listed by Planet")

    def _fetch_small(self, link: ResultLink) -> bytes:
        assert link.location is not None
        data = bytearray()
        with self._downloader.open(link.location) as stream:
            for chunk in stream.chunks():
                data += chunk
                if len(data) > MAX_MANIFEST_BYTES:
                    raise ResultVerificationFailed("manifest.json is implausibly large")
        return bytes(data)

    def _store_bytes(self, key: str, data: bytes) -> None:
        writer = self._store.writer(key, size_hint=len(data), metadata={}, content_type="application/json")
        writer.write(data)
        writer.complete()


def _mismatches(entry: ManifestFile, size: int, md5: str, sha256: str) -> list[str]:
    if entry.size is None or not entry.digests.md5 or not entry.digests.sha256:
        return ["manifest.json gives no size, md5 and sha256 for it, so it cannot be verified"]
    problems = []
    if size != entry.size:
        problems.append(f"size {size} != manifest {entry.size}")
    if md5 != entry.digests.md5:
        problems.append(f"md5 {md5} != manifest {entry.digests.md5}")
    if sha256 != entry.digests.sha256:
        problems.append(f"sha256 {sha256} != manifest {entry.digests.sha256}")
    return problems
