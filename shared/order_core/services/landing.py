"""Landing results: every delivered file of an order copied from Planet into the results bucket, verified
against manifest.json, several files at once, resumable across invocations.

A file counts as landed only when its size, md5 and sha256 equal the manifest's (``transfer.py`` does one
file). This module plans the order: which files, where they go (paths that cannot leave the order's
folder), which already landed (skipped), when to stop because the invocation is running out of time, and
finally ``manifest.json`` and ``delivery.json`` next to the files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from order_core.adapters.downloads import ResultDownloader
from order_core.adapters.planet_client import PlanetClient
from order_core.adapters.storage import ResultsStore, StoredObject
from order_core.errors import (
    DownloadRefused,
    GatewayError,
    ResultVerificationFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.order import LandedFile, LandingProgress, OrderRecord, Phase, utcnow
from order_core.models.planet import Manifest, ManifestFile, OrderState, ResultLink
from order_core.observability import bind_order, logger, metrics
from order_core.ports import OrderStore
from order_core.services.archives import (
    INNER_MANIFEST,
    MAX_ITEM_METADATA_BYTES,
    ArchiveReport,
    ArchiveStopped,
    is_archive,
    verify_archive,
)
from order_core.services.stac import (
    CATALOG,
    STAC_FOLDER,
    StacFile,
    StacOrder,
    build_catalog,
    metadata_item_id,
)
from order_core.services.transfer import (
    UNKNOWN_SIZE,
    Checkpoints,
    FileToLand,
    MemoryBudget,
    Transfer,
    TransferLimits,
)

MANIFEST = "manifest.json"
DELIVERY = "delivery.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: S3 keys are at most 1024 bytes; the order folder takes about 100 of them.
MAX_PATH_BYTES = 900
#: A link expiring sooner than this is refreshed before it is used.
LINK_EXPIRY_MARGIN = timedelta(seconds=30)
#: Planet allows 3 order GETs per second per key: refreshes are spaced at least this far apart.
REFRESH_INTERVAL_SECONDS = 0.4
#: Landed files are recorded on the order at most this often (and when the invocation ends).
SAVE_INTERVAL_SECONDS = 5.0


def safe_relative_path(result_name: str) -> str:
    """The path of a result inside its order folder, refusing anything that could escape or confuse it.

    Planet names results ``<upstream order id>/<path>``; the first segment is dropped. Refused: absolute
    paths, backslashes, empty, ``.`` or ``..`` segments, control characters and paths too long for a key.
    """
    parts = result_name.split("/", 1)
    relative = parts[1] if len(parts) == 2 else parts[0]
    segments = relative.split("/")
    if (
        not relative
        or "\\" in relative
        or any(segment in ("", ".", "..") for segment in segments)
        or any(ord(char) < 32 or ord(char) == 127 for char in relative)
        or len(relative.encode()) > MAX_PATH_BYTES
    ):
        raise ResultVerificationFailed(
            f"refusing result {result_name!r}: its path would not stay inside the order's folder"
        )
    return relative


@dataclass(frozen=True)
class LandingTuning:
    """How hard landing works at once; defaults suit a 1,769 MB (one vCPU) Lambda."""

    file_workers: int = 8
    part_workers: int = 8
    transfer: TransferLimits = field(default_factory=TransferLimits)
    state_prefix: str = "_landing-state"
    #: Bytes of a landed zip archive read back at a time to verify its members (one ranged GET each).
    archive_block_bytes: int = 8 * 1024 * 1024


def _expiry(link: ResultLink) -> datetime | None:
    value = link.expires_at
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


class LinkBook:
    """The order's current result links. Refreshing one GETs the upstream order, which refreshes them all."""

    def __init__(
        self,
        planet: PlanetClient,
        upstream_order_id: str,
        links: Iterable[ResultLink],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._planet = planet
        self._upstream_order_id = upstream_order_id
        self._links = {link.name: link for link in links}
        self._clock = clock
        self._lock = threading.Lock()
        self._last_refresh = 0.0
        self.refreshes = 0

    def _usable(self, link: ResultLink | None) -> bool:
        if link is None or not link.location:
            return False
        expires = _expiry(link)
        # Planet writes 0001-01-01 for links without an expiry.
        return expires is None or expires.year <= 1 or expires - LINK_EXPIRY_MARGIN > self._clock()

    def location(self, name: str) -> str:
        with self._lock:
            link = self._links.get(name)
            if self._usable(link):
                assert link is not None and link.location is not None
                return link.location
        return self.refresh(name, (link.location if link else None) or "")

    def refresh(self, name: str, stale: str) -> str:
        with self._lock:
            current = self._links.get(name)
            if current is not None and current.location != stale and self._usable(current):
                assert current.location is not None
                return current.location  # another file refreshed them meanwhile
            self._get_order()
            fresh = self._links.get(name)
            if fresh is None or not fresh.location:
                raise ResultVerificationFailed(f"{name} is no longer listed by Planet")
            return fresh.location

    def _get_order(self) -> None:
        for attempt in range(5):
            pause = self._last_refresh + REFRESH_INTERVAL_SECONDS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._last_refresh = time.monotonic()
            try:
                upstream = self._planet.get_order(self._upstream_order_id)
            except UpstreamRateLimited as exc:
                if attempt == 4:
                    raise
                time.sleep(min(exc.retry_after or 1.0, 10.0))
                continue
            self._links.update({link.name: link for link in upstream.links.results or []})
            self.refreshes += 1
            metrics.add_metric(name="LinkRefreshes", unit="Count", value=1)
            logger.info("result links refreshed", extra={"refreshes": self.refreshes})
            return


def _already_landed(file: FileToLand, head: StoredObject | None) -> LandedFile | None:
    """``file`` as landed by an earlier attempt, if the object's size and digests say so."""
    if head is None or head.size != file.size:
        return None
    md5, sha256 = head.metadata.get("md5"), head.metadata.get("sha256")
    if not md5 or not sha256 or (file.verified_by_manifest and (md5, sha256) != (file.md5, file.sha256)):
        return None
    return file.landed(md5, sha256)


def _landed_from_metadata(file: FileToLand, metadata: dict[str, str] | None, size: int | None) -> bool:
    return bool(
        metadata is not None
        and size == file.size
        and metadata.get("md5") == file.md5
        and metadata.get("sha256") == file.sha256
    )


#: When several files fail, the order's error is the most decisive kind: a refused URL or a file that
#: never verified ends the order; transient trouble lets Step Functions retry the task.
_ERROR_RANK = (
    DownloadRefused,
    ResultVerificationFailed,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)


def _combined_error(failures: list[tuple[str, BaseException]]) -> BaseException:
    def rank(item: tuple[str, BaseException]) -> int:
        return next((i for i, kind in enumerate(_ERROR_RANK) if isinstance(item[1], kind)), len(_ERROR_RANK))

    failures = sorted(failures, key=rank)
    lead = failures[0][1]
    message = "; ".join(str(error) for _, error in failures[:3])
    if len(failures) > 3:
        message += f"; and {len(failures) - 3} more files failed"
    if isinstance(lead, UpstreamError):
        return lead.restated(message)
    if isinstance(lead, GatewayError):
        return type(lead)(message)
    return lead


class LandingService:
    def __init__(
        self,
        repo: OrderStore,
        planet: PlanetClient,
        downloader: ResultDownloader,
        store: ResultsStore,
        prefix: str,
        tuning: LandingTuning | None = None,
    ) -> None:
        self._repo = repo
        self._planet = planet
        self._downloader = downloader
        self._store = store
        self._prefix = prefix.strip("/")
        self._tuning = tuning or LandingTuning()
        #: Peak bytes held by buffers during the last ``land`` call (for tests and benchmarks).
        self.peak_buffer_bytes = 0
        #: Reports of the archives verified by this service, by key.
        self._reports: dict[str, ArchiveReport] = {}

    def order_prefix(self, record: OrderRecord) -> str:
        return f"{self._prefix}/{record.tenant}/{record.order_id}"

    def land(self, order_id: str, seconds_left: Callable[[], float]) -> LandingProgress:
        """Land what is not landed yet; returns complete=False when time ran short (call again).

        Whatever it raises, the order's results first become exactly the verified files in its folder (see
        ``_record_what_landed``), so a failed order never reports more or less than it holds.
        """
        record = self._repo.get(order_id)
        if record is None or record.upstream_order_id is None:
            raise ResultVerificationFailed(f"order {order_id} has nothing to land")
        bind_order(record.order_id, record.tenant)
        if record.native_delivery or record.upstream_state not in (OrderState.success, OrderState.partial):
            return LandingProgress(complete=True, landed_files=0)
        if record.delivery_key is not None or record.phase is Phase.FINALIZED:
            # Landed (delivery.json written) or already ended: a redelivered or retried call must not
            # download, write or rewrite anything (manifest.json, delivery.json, the STAC catalog).
            return LandingProgress(complete=True, landed_files=len(record.results))
        try:
            return self._land(record, record.upstream_order_id, seconds_left)
        except Exception:
            self._record_what_landed(record)
            raise

    def _land(
        self, record: OrderRecord, upstream_order_id: str, seconds_left: Callable[[], float]
    ) -> LandingProgress:
        self.peak_buffer_bytes = 0
        self._reports = {}
        upstream = self._planet.get_order(upstream_order_id)
        results = upstream.links.results or []
        delivered = [link for link in results if link.delivery in (None, "success")]
        not_delivered = [link.name for link in results if link.delivery not in (None, "success")]
        links = LinkBook(self._planet, upstream_order_id, delivered)
        manifest_link = next((lk for lk in delivered if lk.name.endswith("/" + MANIFEST)), None)
        if manifest_link is None or not manifest_link.location:
            raise ResultVerificationFailed(
                "Planet listed no manifest.json for this order; nothing can be verified"
            )
        base = self.order_prefix(record)
        tuning = self._tuning
        stop = threading.Event()
        budget = MemoryBudget(tuning.transfer.buffer_bytes)
        checkpoints = Checkpoints(self._store, f"{tuning.state_prefix}/{record.tenant}/{record.order_id}")
        with (
            ThreadPoolExecutor(tuning.part_workers, thread_name_prefix="part") as part_pool,
            ThreadPoolExecutor(tuning.file_workers, thread_name_prefix="file") as file_pool,
        ):
            transfer = Transfer(
                self._downloader, self._store, links, checkpoints, part_pool, stop, tuning.transfer, budget
            )
            # manifest.json comes the way every file does: the same retries, the same hops, the same limits.
            fetched = transfer.fetch_document(
                MANIFEST, manifest_link.name, MAX_MANIFEST_BYTES, lambda data: (data, _parse_manifest(data))
            )
            if fetched is None:
                return LandingProgress(complete=False, landed_files=len(record.results))
            manifest_bytes, manifest = fetched
            files = self._plan(base, delivered, manifest_link, manifest)

            landed = {item.path: item for item in record.results if item.path != MANIFEST}
            todo = self._not_yet_landed(base, files, landed)
            if todo:
                logger.info("landing files", extra={"files": len(todo), "already_landed": len(landed)})
                self._save(record, landed, files)  # the order's GET lists what landed and what is coming
                finished = self._land_files(record, files, todo, transfer, file_pool, landed, seconds_left)
                self.peak_buffer_bytes = budget.peak
                if not finished:
                    self._save(record, landed, files)
                    return LandingProgress(complete=False, landed_files=len(landed))

        self._finish(record, base, files, landed, manifest_bytes, manifest, not_delivered)
        return LandingProgress(complete=True, landed_files=len(landed))

    # --- planning ------------------------------------------------------------------------------------------

    def _plan(
        self, base: str, delivered: list[ResultLink], manifest_link: ResultLink, manifest: Manifest
    ) -> list[FileToLand]:
        expected = {entry.path: entry for entry in manifest.files}
        files: list[FileToLand] = []
        for link in delivered:
            if link is manifest_link:
                continue
            path = safe_relative_path(link.name)
            entry = expected.pop(path, None)
            if is_archive(path) and (entry is None or not entry.digests.md5 or not entry.digests.sha256):
                # Verified by its members' CRC-32 and its inner manifest's digests instead (archives.py).
                size = entry.size if entry is not None and entry.size is not None else UNKNOWN_SIZE
                media_type = (entry.media_type if entry is not None else None) or "application/zip"
                files.append(
                    FileToLand(path, f"{base}/{path}", size, None, None, media_type, link_name=link.name)
                )
                continue
            if entry is None or entry.size is None or not entry.digests.md5 or not entry.digests.sha256:
                raise ResultVerificationFailed(
                    f"{path} is not listed in manifest.json with its size and digests"
                )
            files.append(_file_to_land(base, path, entry, link.name))
        if expected:
            missing = sorted(expected)
            raise ResultVerificationFailed(
                f"manifest.json lists {len(missing)} file(s) Planet gave no download link for: "
                + ", ".join(missing[:3])
            )
        return files

    def _not_yet_landed(
        self, base: str, files: list[FileToLand], landed: dict[str, LandedFile]
    ) -> list[FileToLand]:
        """Files still to land. One listing of the folder finds candidates; their metadata decides."""
        pending = [file for file in files if file.path not in landed]
        if not pending:
            return []
        sizes = self._store.sizes_under(base + "/")
        todo = []
        for file in pending:
            if is_archive(file.path):
                todo.append(file)  # its task finds out cheaply whether it landed and was verified
                continue
            if sizes.get(file.key) == file.size:
                head = self._store.head(file.key)
                if head is not None and _landed_from_metadata(file, head.metadata, head.size):
                    landed[file.path] = file.landed()
                    continue
            todo.append(file)
        return todo

    # --- landing, several files at once --------------------------------------------------------------------

    def _land_files(
        self,
        record: OrderRecord,
        files: list[FileToLand],
        todo: list[FileToLand],
        transfer: Transfer,
        file_pool: ThreadPoolExecutor,
        landed: dict[str, LandedFile],
        seconds_left: Callable[[], float],
    ) -> bool:
        """Land ``todo`` into ``landed``; False if time ran short first. Raises when a file failed."""
        stop, workers = transfer.stop, self._tuning.file_workers
        failures: list[tuple[str, BaseException]] = []
        last_save = time.monotonic()
        pending: dict[Future[LandedFile | None], FileToLand] = {}
        queue = list(reversed(todo))
        try:
            while queue or pending:
                if not stop.is_set() and seconds_left() <= 0:
                    logger.info("running out of time: stopping after the parts in flight")
                    stop.set()
                # Submit only a little ahead of the workers, so that stopping leaves nothing half-queued.
                while queue and not stop.is_set() and len(pending) < workers * 2:
                    file = queue.pop()
                    if is_archive(file.path):
                        future = file_pool.submit(self._land_archive, record, transfer, file)
                    else:
                        future = file_pool.submit(transfer.land, file)
                    pending[future] = file
                if not pending:
                    break
                done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    file = pending.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:
                        failures.append((file.path, exc))
                        stop.set()
                        continue
                    if result is not None:
                        landed[file.path] = result
                if time.monotonic() - last_save > SAVE_INTERVAL_SECONDS:
                    self._save(record, landed, files)
                    last_save = time.monotonic()
        finally:
            stop.set()  # whatever ends this loop, no file is started after it
        if failures:
            metrics.add_metric(name="LandingErrors", unit="Count", value=len(failures))
            self._save(record, landed, files)
            raise _combined_error(failures)
        return all(file.path in landed for file in todo)

    # --- zip archives: landed as any file, then verified member by member -----------------------------------

    def _archive_report_key(self, record: OrderRecord, file_key: str) -> str:
        digest = hashlib.sha256(file_key.encode()).hexdigest()[:40]
        return f"{self._tuning.state_prefix}/{record.tenant}/{record.order_id}/archives/{digest}.json"

    def archive_report(self, record: OrderRecord, file: FileToLand | LandedFile) -> ArchiveReport | None:
        """The saved report of an archive that landed and verified, if it still describes the object."""
        saved = self._store.get_json(self._archive_report_key(record, file.key))
        if not isinstance(saved, dict):
            return None
        try:
            report = ArchiveReport.model_validate(saved)
        except ValidationError:
            return None
        same_size = file.size in (UNKNOWN_SIZE, report.size)
        same_digests = (file.md5 or report.md5, file.sha256 or report.sha256) == (report.md5, report.sha256)
        return report if report.key == file.key and same_size and same_digests else None

    def _verified_archive(self, record: OrderRecord, path: str, key: str, size: int) -> LandedFile | None:
        """The archive at ``key`` as landed, if its report says its members verified (its digests may be
        in the report alone: an archive the manifest gave none for has none in its object metadata)."""
        probe = FileToLand(path, key, size, None, None, "application/zip", link_name="")
        report = self.archive_report(record, probe)
        if report is None:
            return None
        return LandedFile(
            path=path, key=key, size=size, md5=report.md5, sha256=report.sha256, media_type="application/zip"
        )

    def _land_archive(self, record: OrderRecord, transfer: Transfer, file: FileToLand) -> LandedFile | None:
        """Land a zip archive and verify its members; None if the stop event came first.

        An archive counts as landed only once its report is saved: an invocation killed in between verifies
        the landed object again (from the bucket, not from Planet). An archive whose members do not verify is
        landed again when the manifest gave no digests for it (the bytes may have been damaged on the way);
        otherwise it is Planet's archive that is broken, and the order fails naming the member.
        """
        report = self.archive_report(record, file)
        head = self._store.head(file.key)
        if report is not None and head is not None and head.size == report.size:
            return LandedFile(
                path=file.path,
                key=file.key,
                size=report.size,
                md5=report.md5,
                sha256=report.sha256,
                media_type=file.media_type,
            )
        attempts = self._tuning.transfer.file_attempts
        for attempt in range(1, attempts + 1):
            if file.size == UNKNOWN_SIZE:
                size = transfer.probe_size(file)
                if size is None:
                    return None
                file = dataclasses.replace(file, size=size)
            landed = _already_landed(file, head)
            if landed is None:
                landed = transfer.land(file)
                if landed is None:
                    return None
            try:
                report = self._verify_archive(transfer, landed)
            except ArchiveStopped:
                return None
            except ResultVerificationFailed:
                if file.verified_by_manifest or attempt == attempts:
                    raise
                logger.warning("archive did not verify: landing it again", extra={"path": file.path})
                head = None
                continue
            self._store.put_json(self._archive_report_key(record, file.key), report.model_dump(mode="json"))
            self._reports[file.key] = report
            return landed
        return None  # not reached: the last attempt returns or raises

    def _verify_archive(self, transfer: Transfer, landed: LandedFile) -> ArchiveReport:
        block = self._tuning.archive_block_bytes
        if not transfer.budget.acquire(block, transfer.stop.is_set):
            raise ArchiveStopped(landed.path)
        try:
            return verify_archive(
                self._store,
                landed.key,
                landed.size,
                landed.md5,
                landed.sha256,
                block_bytes=block,
                stop=transfer.stop,
            )
        finally:
            transfer.budget.release(block)

    # --- the end -------------------------------------------------------------------------------------------

    def _finish(
        self,
        record: OrderRecord,
        base: str,
        files: list[FileToLand],
        landed: dict[str, LandedFile],
        manifest_bytes: bytes,
        manifest: Manifest,
        not_delivered: list[str],
    ) -> None:
        in_order = [landed[file.path] for file in files]
        reports = {}
        for item in in_order:
            if is_archive(item.path):
                report = self._reports.get(item.key) or self.archive_report(record, item)
                if report is None:
                    raise ResultVerificationFailed(f"{item.path}: its members' verification was lost")
                reports[item.path] = report
        manifest_md5 = hashlib.md5(manifest_bytes, usedforsecurity=False).hexdigest()
        manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        self._store.put_bytes(
            f"{base}/{MANIFEST}",
            manifest_bytes,
            metadata={"md5": manifest_md5, "sha256": manifest_sha256},
            content_type="application/json",
            md5=manifest_md5,
        )
        catalog_key = self._write_catalog(record, base, in_order, manifest, reports)
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
                "verified": "size, md5 and sha256 of every file equal manifest.json's",
                "files": [item.model_dump() for item in in_order],
                "archives": {
                    path: {
                        "verified": "each member's CRC-32"
                        + (
                            ", and size, md5 and sha256 against its manifest.json" if r.inner_manifest else ""
                        ),
                        "members": [
                            m.model_dump(exclude={"item_metadata", "annotations"}) for m in r.members
                        ],
                    }
                    for path, r in reports.items()
                },
                "stac_catalog": catalog_key,
                "not_delivered": not_delivered,
            },
        )
        manifest_file = LandedFile(
            path=MANIFEST,
            key=f"{base}/{MANIFEST}",
            size=len(manifest_bytes),
            md5=manifest_md5,
            sha256=manifest_sha256,
            media_type="application/json",
        )
        hints = None
        if not_delivered:
            hint = _not_delivered_hint(not_delivered)
            if hint not in record.error_hints:
                hints = [*record.error_hints, hint]
        self._repo.record_results(
            record.order_id,
            [manifest_file, *in_order],
            pending=[],
            landed_bytes=data_bytes(in_order),
            delivery_key=delivery_key,
            error_hints=hints,
        )
        logger.info("results landed", extra={"files": len(in_order)})
        metrics.add_metric(name="LandedFiles", unit="Count", value=len(in_order))
        metrics.add_metric(name="LandedBytes", unit="Bytes", value=data_bytes(in_order))

    def _write_catalog(
        self,
        record: OrderRecord,
        base: str,
        in_order: list[LandedFile],
        manifest: Manifest,
        reports: dict[str, ArchiveReport],
    ) -> str | None:
        """Write the order's STAC catalog (``stac.py``) next to ``delivery.json``; its key, or None when
        Planet delivered files where the catalog would go (theirs are kept, ours is not written)."""
        paths = {item.path for item in in_order}
        if any(path.startswith(STAC_FOLDER + "/") for path in paths):
            logger.warning("no STAC catalog: Planet delivered files where it would go")
            return None
        bucket = self._store.bucket
        entries = {entry.path: entry for entry in manifest.files}
        files: list[StacFile] = []
        item_metadata: dict[str, dict[str, Any]] = {}
        to_read: dict[str, str] = {}
        for item in in_order:
            entry = entries.get(item.path)
            href = f"s3://{bucket}/{item.key}"
            files.append(
                StacFile(
                    path=item.path,
                    href=href,
                    size=item.size,
                    sha256=item.sha256,
                    media_type=item.media_type,
                    annotations=dict(entry.annotations) if entry is not None else {},
                    archive=is_archive(item.path),
                )
            )
            item_id = metadata_item_id(item.path)
            if item_id and item.size <= MAX_ITEM_METADATA_BYTES:
                to_read[item_id] = item.key
            for member in reports[item.path].members if item.path in reports else []:
                if member.path == INNER_MANIFEST:
                    continue
                files.append(
                    StacFile(
                        path=f"{item.path}!/{member.path}",
                        href=f"zip+s3://{bucket}/{item.key}!/{member.path}",
                        size=member.size,
                        sha256=member.sha256,
                        media_type=member.media_type,
                        annotations=member.annotations,
                        in_archive=href,
                    )
                )
                member_item = metadata_item_id(member.path)
                if member_item and member.item_metadata:
                    item_metadata[member_item] = member.item_metadata
        with ThreadPoolExecutor(self._tuning.file_workers, thread_name_prefix="stac") as pool:
            for item_id, document in zip(
                to_read, pool.map(self._store.get_json, to_read.values()), strict=True
            ):
                if isinstance(document, dict):
                    item_metadata[item_id] = document
            documents = build_catalog(
                StacOrder(
                    order_id=record.order_id,
                    name=record.name,
                    upstream_order_id=record.upstream_order_id,
                    created_on=record.created_on,
                    root=f"s3://{bucket}/{base}",
                    files=files,
                    item_metadata=item_metadata,
                )
            )
            prefix = f"s3://{bucket}/"
            list(
                pool.map(
                    lambda pair: self._store.put_json(pair[0].removeprefix(prefix), pair[1]),
                    documents.items(),
                )
            )
        return f"{base}/{CATALOG}"

    def _save(self, record: OrderRecord, landed: dict[str, LandedFile], files: list[FileToLand]) -> None:
        """Record what landed so far and what is still coming: one write per call, and the landing loop
        calls at most every ``SAVE_INTERVAL_SECONDS`` (not per file: a 500-item order would pay 2,000)."""
        self._repo.record_results(
            record.order_id,
            list(landed.values()),
            pending=[file.path for file in files if file.path not in landed],
            landed_bytes=data_bytes(landed.values()),
            last_message=f"Landed {len(landed)} files",
        )

    def _record_what_landed(self, record: OrderRecord) -> None:
        """After a failure: the order's results become exactly the verified files in its folder.

        Every object there with digests in its metadata was verified before it became visible (single PUTs
        after hashing, multipart uploads completed only when both digests matched), so the folder is the
        truth; the record may lag it by the files of an invocation killed between two saves. Best effort:
        a failure here is logged and the original error goes on.
        """
        base = self.order_prefix(record)
        try:
            current = self._repo.get(record.order_id) or record
            known = {item.key: item for item in current.results}
            results = []
            for key, size in sorted(self._store.sizes_under(base + "/").items()):
                path = key.removeprefix(base + "/")
                if is_archive(path):
                    item = self._verified_archive(current, path, key, size)  # only once its members verified
                else:
                    item = known.get(key)
                    if item is None or item.size != size:
                        item = _landed_from_object(base, key, self._store.head(key))
                if item is not None:
                    results.append(item)
            # Nothing pending: what has not landed will not, the order is ending.
            self._repo.record_results(record.order_id, results, pending=[], landed_bytes=data_bytes(results))
        except Exception as exc:
            logger.warning("landed files not recorded after a failure", extra={"error": str(exc)})


def data_bytes(results: Iterable[LandedFile]) -> int:
    """Bytes of an order's landed files, manifest.json not counted (as in its completion event)."""
    return sum(item.size for item in results if item.path != MANIFEST)


def _landed_from_object(base: str, key: str, head: StoredObject | None) -> LandedFile | None:
    metadata = head.metadata if head is not None else {}
    if head is None or not metadata.get("md5") or not metadata.get("sha256"):
        return None  # delivery.json, or not one of the order's verified files
    return LandedFile(
        path=key.removeprefix(base + "/"),
        key=key,
        size=head.size,
        md5=metadata["md5"],
        sha256=metadata["sha256"],
    )


def _not_delivered_hint(names: list[str]) -> str:
    shown = ", ".join(name.split("/", 1)[-1] for name in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return (
        f"Planet did not deliver {len(names)} result file(s), which were not landed: {shown}{more}. "
        "Every delivered file landed and is listed in results."
    )


def _parse_manifest(data: bytes) -> Manifest:
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()[:3]
        )
        raise ResultVerificationFailed(f"manifest.json is not valid: {problems}") from exc


def _file_to_land(base: str, path: str, entry: ManifestFile, link_name: str) -> FileToLand:
    assert entry.size is not None and entry.digests.md5 and entry.digests.sha256
    return FileToLand(
        path=path,
        key=f"{base}/{path}",
        size=entry.size,
        md5=entry.digests.md5,
        sha256=entry.digests.sha256,
        media_type=entry.media_type,
        link_name=link_name,
    )
