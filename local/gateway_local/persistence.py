"""Keep the local stack's state on disk, so ``make up`` after a stop resumes where it was.

What is kept (``<state dir>/state.pickle`` plus ``<state dir>/blobs/``):

- every DynamoDB item (orders, API keys, idempotency records), every SQS message (intake, dead letters,
  the local completion-events queue), every S3 object (landed files, ``delivery.json``, landing
  checkpoints) with its ETag, metadata and last-modified time, every multipart upload in progress with its
  parts (a landing resumes mid-file), the generated secrets (the download-link signing key, so links
  handed out before a restart still work);
- the fake Planet's orders, with their wall-clock timelines (an order due to finish while the stack was
  down is finished when it comes back).

What is not: Step Functions executions (and Lambda invocations in flight). A restart loses them, which is
exactly what the reconciler repairs (``order_core.services.reconcile``).

Consistency: the gateway's records and the fake Planet are captured at one instant. A ``PauseGate`` sits in
front of moto and the fake: every request that can change state passes it as a reader, a snapshot takes it
as the writer, so no request is half-applied in a snapshot, and the submit path's write-ahead ("submitting"
is recorded before the POST) holds across a restart: if Planet has the order in a snapshot, the record says
at least "submitting", and the submit path reconciles by the order's marker instead of POSTing twice.
Lambda invocations (whose handlers make their own gated requests) and SQS receives are not gated.

A kill -9 runs no shutdown hook: snapshots are taken every ``interval`` seconds when something changed,
written to a temporary file and renamed, so a snapshot is whole or absent; the last seconds before a kill
are lost, as a database without fsync would lose them.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "state.pickle"
BLOBS_DIR = "blobs"
FORMAT_VERSION = 1
DEFAULT_INTERVAL_SECONDS = 2.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PauseGate:
    """A writer-preferring readers-writer lock with a "something changed" flag.

    Requests are readers (many at once); a snapshot is the writer: it waits for the requests in progress
    to finish and holds new ones back while it copies the state (a few milliseconds to a few tenths of a
    second).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self.dirty = True  # the first snapshot after a start records the restored state

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._condition:
            while self._writer or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self.dirty = True
                if self._readers == 0:
                    self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._condition.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()


class GatedApp:
    """WSGI middleware: requests pass the gate, except those ``ungated`` picks out."""

    def __init__(self, app: WSGIApp, gate: PauseGate, ungated: Callable[[dict[str, Any]], bool]) -> None:
        self._app = app
        self._gate = gate
        self._ungated = ungated

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._ungated(environ):
            return self._app(environ, start_response)
        with self._gate.request():
            # moto and Flask build the whole answer inside the call; the body is handed over as bytes.
            return list(self._app(environ, start_response))


def moto_ungated(environ: dict[str, Any]) -> bool:
    """Lambda invocations (their handlers' own requests pass the gate) and SQS receives (a received
    message is restored as visible anyway) would hold the gate for seconds."""
    path = environ.get("PATH_INFO", "")
    if "/functions/" in path and path.endswith("/invocations"):
        return True
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).endswith(".ReceiveMessage")


def planet_ungated(environ: dict[str, Any]) -> bool:
    """Result downloads change nothing and may stream for long."""
    path = environ.get("PATH_INFO", "")
    return path.startswith("/storage/") or "/download" in path


# --- what a snapshot holds ------------------------------------------------------------------------------


@dataclass
class Snapshot:
    taken_at: datetime
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name → items (typed JSON)
    queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name → messages
    objects: dict[str, dict[str, str]] = field(default_factory=dict)  # bucket → key → blob name
    # bucket → upload id → (the upload without its parts, part number → blob name)
    uploads: dict[str, dict[str, tuple[bytes, dict[int, str]]]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # name → SecretString
    planet: bytes | None = None  # the fake Planet's orders (FakePlanetStore.export_state)
    version: int = FORMAT_VERSION

    def counts(self) -> dict[str, int]:
        return {
            "items": sum(len(items) for items in self.tables.values()),
            "messages": sum(len(messages) for messages in self.queues.values()),
            "objects": sum(len(keys) for keys in self.objects.values()),
            "uploads in progress": sum(len(uploads) for uploads in self.uploads.values()),
        }


def _backends(account_id: str, region: str) -> tuple[Any, Any, Any, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.sqs.models import sqs_backends

    return (
        dynamodb_backends[account_id][region],
        sqs_backends[account_id][region],
        s3_backends[account_id]["aws"],
        secretsmanager_backends[account_id][region],
    )


def _identity(bucket: str, name: str, key: Any) -> tuple[str, str, str, str]:
    """What makes a stored object (or part) the same object: a changed one is written again."""
    return (bucket, name, key.etag, key.last_modified.isoformat())


class StateStore:
    """The snapshot file and the object blobs under one state folder."""

    def __init__(self, state_dir: Path, account_id: str, region: str) -> None:
        self.state_dir = state_dir
        self.snapshot_path = state_dir / SNAPSHOT_FILE
        self.blobs = state_dir / BLOBS_DIR
        self._account_id = account_id
        self._region = region
        # (bucket, key, etag, last modified) → blob name, for objects already written
        self._known: dict[tuple[str, str, str, str], str] = {}
        #: ARNs of secrets neither saved nor restored (their value comes from the environment)
        self.private_secrets: set[str] = set()

    # --- reading and writing the folder ----------------------------------------------------------------

    def load(self) -> Snapshot | None:
        try:
            data = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        snapshot = pickle.loads(data)  # noqa: S301 - our own file, in the user's own state folder
        if not isinstance(snapshot, Snapshot) or snapshot.version != FORMAT_VERSION:
            raise RuntimeError(
                f"{self.snapshot_path} was written by another version of the local stack; "
                "start fresh with `make clean-state`"
            )
        return snapshot

    def write(self, data: bytes, snapshot: Snapshot, new_blobs: dict[str, bytes]) -> None:
        """Blobs first, then the snapshot naming them (``data``, atomically), then unreferenced blobs go."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        for name, blob in new_blobs.items():
            target = self.blobs / name
            if not target.exists():
                partial = target.with_suffix(".tmp")
                partial.write_bytes(blob)
                partial.replace(target)
        partial = self.snapshot_path.with_suffix(".tmp")
        partial.write_bytes(data)
        partial.replace(self.snapshot_path)
        referenced = {name for keys in snapshot.objects.values() for name in keys.values()}
        referenced |= {
            name
            for uploads in snapshot.uploads.values()
            for _, parts in uploads.values()
            for name in parts.values()
        }
        for path in self.blobs.iterdir():
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        self.snapshot_path.unlink(missing_ok=True)
        self.snapshot_path.with_suffix(".tmp").unlink(missing_ok=True)
        shutil.rmtree(self.blobs, ignore_errors=True)

    # --- moto's state ----------------------------------------------------------------------------------

    def capture(self, planet_state: Callable[[], bytes] | None) -> tuple[Snapshot, dict[str, bytes]]:
        """Copy the state (call with the gate held). Returns the snapshot and the blobs it needs."""
        dynamodb, sqs, s3, secrets = _backends(self._account_id, self._region)
        snapshot = Snapshot(taken_at=datetime.now(UTC))
        for name, table in list(dynamodb.tables.items()):
            snapshot.tables[name] = [item.to_json()["Attributes"] for item in table.all_items()]
        for name, queue in list(sqs.queues.items()):
            snapshot.queues[name] = [
                {
                    "body": message.body,
                    "attributes": dict(message.message_attributes),
                    "group_id": message.group_id,
                    "deduplication_id": message.deduplication_id,
                }
                for message in list(queue._messages)  # moto keeps no public list
            ]
        new_blobs: dict[str, bytes] = {}
        known: dict[tuple[str, str, str, str], str] = {}
        for bucket_name, bucket in list(s3.buckets.items()):
            keys: dict[str, str] = {}
            for key_name, key in list(bucket.keys.items()):
                identity = _identity(bucket_name, key_name, key)
                blob = self._known.get(identity)
                if blob is None:
                    data = pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL)  # FakeKey pickles its bytes
                    blob = hashlib.sha256(repr(identity).encode()).hexdigest()
                    new_blobs[blob] = data
                known[identity] = blob
                keys[key_name] = blob
            snapshot.objects[bucket_name] = keys
            uploads: dict[str, tuple[bytes, dict[int, str]]] = {}
            for upload_id, upload in list(bucket.multiparts.items()):
                parts: dict[int, str] = {}
                for number, part in list(upload.parts.items()):
                    identity = _identity(bucket_name, f"{upload_id}#{number}", part)
                    blob = self._known.get(identity)
                    if blob is None:
                        blob = hashlib.sha256(repr(identity).encode()).hexdigest()
                        new_blobs[blob] = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
                    known[identity] = blob
                    parts[int(number)] = blob
                without_parts = {k: v for k, v in vars(upload).items() if k != "parts"}
                uploads[upload_id] = (pickle.dumps(without_parts), parts)
            snapshot.uploads[bucket_name] = uploads
        self._known = known
        for secret in list(secrets.secrets.values()):
            # A secret whose value each start decides (the Planet key) is never written to disk.
            if secret.secret_string is not None and secret.arn not in self.private_secrets:
                snapshot.secrets[secret.name] = secret.secret_string
        if planet_state is not None:
            snapshot.planet = planet_state()
        return snapshot, new_blobs

    def restore(self, snapshot: Snapshot, client: Callable[[str], Any]) -> None:
        """Put a snapshot's state into freshly provisioned resources (tables, queues, buckets, secrets).

        Tables, queues and buckets that no longer exist are skipped with a warning (the template changed).
        """
        dynamodb, sqs_backend, s3, _ = _backends(self._account_id, self._region)
        for name, items in snapshot.tables.items():
            table = dynamodb.tables.get(name)
            if table is None:
                log.warning("state: table %s no longer exists; %d items dropped", name, len(items))
                continue
            for item in items:
                table.put_item(item)
        sqs = client("sqs")
        for name, messages in snapshot.queues.items():
            if name not in sqs_backend.queues:
                log.warning("state: queue %s no longer exists; %d messages dropped", name, len(messages))
                continue
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            for message in messages:
                kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": message["body"]}
                if message["attributes"]:
                    kwargs["MessageAttributes"] = message["attributes"]
                if message["group_id"]:
                    kwargs["MessageGroupId"] = message["group_id"]
                if message["deduplication_id"]:
                    kwargs["MessageDeduplicationId"] = message["deduplication_id"]
                sqs.send_message(**kwargs)
        for bucket_name, keys in snapshot.objects.items():
            bucket = s3.buckets.get(bucket_name)
            if bucket is None:
                log.warning("state: bucket %s no longer exists; %d objects dropped", bucket_name, len(keys))
                continue
            for key_name, blob in keys.items():
                data = (self.blobs / blob).read_bytes()
                key = pickle.loads(data)  # noqa: S301 - our own blob
                bucket.keys[key_name] = key
                self._known[_identity(bucket_name, key_name, key)] = blob
        for bucket_name, uploads in snapshot.uploads.items():
            bucket = s3.buckets.get(bucket_name)
            if bucket is None:
                continue
            for upload_id, (state, parts) in uploads.items():
                from moto.s3.models import FakeMultipart

                upload: Any = FakeMultipart.__new__(FakeMultipart)
                vars(upload).update(pickle.loads(state))  # noqa: S301 - our own state
                upload.parts = {}
                for number, blob in parts.items():
                    part = pickle.loads((self.blobs / blob).read_bytes())  # noqa: S301 - our own blob
                    upload.parts[number] = part
                    identity = _identity(bucket_name, f"{upload_id}#{number}", part)
                    self._known[identity] = blob
                bucket.multiparts[upload_id] = upload
        secretsmanager = client("secretsmanager")
        for name, value in snapshot.secrets.items():
            try:
                if secretsmanager.describe_secret(SecretId=name)["ARN"] in self.private_secrets:
                    continue
                secretsmanager.put_secret_value(SecretId=name, SecretString=value)
            except secretsmanager.exceptions.ResourceNotFoundException:
                log.warning("state: secret %s no longer exists", name)


class Snapshotter:
    """Takes a snapshot every ``interval`` seconds when something changed, and one at ``stop``."""

    def __init__(
        self,
        store: StateStore,
        gate: PauseGate,
        planet_state: Callable[[], bytes] | None,
        interval: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._gate = gate
        self._planet_state = planet_state
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_started = 0.0
        self.last_cost: dict[str, float] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshotter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a last snapshot (call while moto still runs)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.snapshot_now()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._gate.dirty:
                continue
            try:
                self.snapshot_now()
            except Exception:
                log.exception("could not save the local stack's state; retrying")

    def flush(self) -> None:
        """Return once a snapshot has started after this call: what the caller wrote before is on disk.

        Concurrent callers share snapshots: one that began after a caller's call covers it too.
        """
        called = time.monotonic()
        with self._lock:
            if self._last_started > called:
                return
            self._snapshot_locked()

    def snapshot_now(self) -> Snapshot:
        with self._lock:  # the thread, flush() and stop() never write at once
            return self._snapshot_locked()

    def _snapshot_locked(self) -> Snapshot:
        self._last_started = time.monotonic()
        started = time.perf_counter()
        with self._gate.exclusive():
            self._gate.dirty = False
            snapshot, blobs = self._store.capture(self._planet_state)
            # Serialized while requests wait: nothing written below refers to moto's live objects.
            data = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        paused = time.perf_counter() - started
        self._store.write(data, snapshot, blobs)
        self.last_cost = {
            "paused_seconds": paused,
            "total_seconds": time.perf_counter() - started,
            "bytes": float(len(data)),
            "new_blob_bytes": float(sum(len(b) for b in blobs.values())),
        }
        log.debug("state saved: %s %s", snapshot.counts(), self.last_cost)
        return snapshot


def state_location(state_dir: Path) -> str:
    return str(state_dir / SNAPSHOT_FILE)


def remove_state(state_dir: Path) -> bool:
    """Forget the saved state (``make clean-state``); True when there was some."""
    existed = (state_dir / SNAPSHOT_FILE).exists() or (state_dir / BLOBS_DIR).exists()
    StateStore(state_dir, "", "").clear()
    return existed


__all__ = [
    "GatedApp",
    "PauseGate",
    "Snapshot",
    "Snapshotter",
    "StateStore",
    "moto_ungated",
    "planet_ungated",
    "remove_state",
    "state_location",
]
