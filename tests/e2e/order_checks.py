"""Checking an order from outside, as its owner would: the API's answer, the bucket, the completion event.

Shared by the generated-orders suite and the order-kinds tests. Everything here talks to a running local
stack over HTTP (the gateway's API, the fake Planet, moto's S3 and SQS endpoints); nothing imports the
gateway's own code, so a bug there cannot hide itself from these checks.

The oracle for "every file landed" is Planet's side: the manifest.json the fake Planet serves for the
upstream order, fetched here with the stack's Planet key, not the copy the gateway landed.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pystac
import requests
from pystac.stac_io import DefaultStacIO

TERMINAL = frozenset({"success", "partial", "failed", "cancelled"})
#: The results bucket's prefix (template.yaml's ResultsPrefix default, which the local stack uses).
RESULTS_PREFIX = "orders"
#: The gateway's own landing state (archive reports, checkpoints): outside the order folder by design and
#: expired by a lifecycle rule; the only place besides the order folder where an order id may appear.
LANDING_STATE_PREFIX = "_landing-state/"
#: What the gateway writes into an order folder besides Planet's files.
GATEWAY_FILES = frozenset({"manifest.json", "delivery.json"})
STAC_FOLDER = "stac/"


def _retrying(call: Any, *args: Any, **kwargs: Any) -> requests.Response:
    """One HTTP call, repeated while it answers 429 (Planet's per-key limits apply to the fake too)."""
    for _ in range(30):
        response: requests.Response = call(*args, timeout=30, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", 1)))
    return response


@dataclass
class Gateway:
    """The gateway's Orders API for one API key (one tenant)."""

    api_url: str
    key: str
    tenant: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"api-key {self.key}"}

    def create(self, body: Any) -> requests.Response:
        return _retrying(requests.post, f"{self.api_url}/orders/v2", json=body, headers=self.headers)

    def get(self, order_id: str) -> dict[str, Any]:
        response = _retrying(requests.get, f"{self.api_url}/orders/v2/{order_id}", headers=self.headers)
        response.raise_for_status()
        return dict(response.json())

    def list_ids(self) -> set[str]:
        """Every order of this tenant, whatever its source type (following `next`)."""
        ids: set[str] = set()
        url: str | None = f"{self.api_url}/orders/v2?source_type=all"
        while url:
            page = _retrying(requests.get, url, headers=self.headers)
            page.raise_for_status()
            body = page.json()
            ids |= {order["id"] for order in body["orders"]}
            url = body["_links"].get("next")
        return ids

    def wait_all(self, order_ids: list[str], timeout: float = 240) -> dict[str, dict[str, Any]]:
        """Every order's terminal answer; fails naming the orders still running at the deadline."""
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(order_ids):
            for order_id in order_ids:
                if order_id not in done and (order := self.get(order_id))["state"] in TERMINAL:
                    done[order_id] = order
            if len(done) < len(order_ids):
                waiting = {i: self.get(i)["state"] for i in order_ids if i not in done}
                assert time.monotonic() < deadline, f"not terminal after {timeout} s: {waiting}"
                time.sleep(1)
        return done


class CompletionEvents:
    """Every SNS completion event the stack publishes, read from its subscribed queue and kept by order id.

    One reader per stack (a session fixture): it deletes what it reads, so two readers would split events.
    """

    def __init__(self, stack: Any) -> None:
        self._sqs = stack.client("sqs")
        self._url = stack.outputs["completion_events_queue_url"]
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _drain(self) -> None:
        got = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            envelope = json.loads(message["Body"])
            event = json.loads(envelope["Message"])
            event["_attributes"] = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            self._events.setdefault(event["order_id"], []).append(event)
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def for_orders(
        self, order_ids: list[str], timeout: float = 60, settle: float = 3
    ) -> dict[str, list[Any]]:
        """The events of these orders: waits until each has one, then ``settle`` seconds for duplicates."""
        with self._lock:
            deadline = time.monotonic() + timeout
            while any(not self._events.get(i) for i in order_ids) and time.monotonic() < deadline:
                self._drain()
            settled = time.monotonic() + settle
            while time.monotonic() < settled:
                self._drain()
            return {i: list(self._events.get(i, [])) for i in order_ids}


class S3StacIO(DefaultStacIO):
    """pystac reading ``s3://bucket/key`` through boto3 (here: the stack's moto endpoint)."""

    def __init__(self, s3: Any) -> None:
        super().__init__()
        self._s3 = s3

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        href = str(source)
        if href.startswith("s3://"):
            parts = urlsplit(href)
            body = self._s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
            return str(body.decode("utf-8"))
        return str(super().read_text(source, *args, **kwargs))

    def write_text(self, dest: Any, txt: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the test only reads STAC documents; something tried to write {dest}")


@dataclass
class PlanetSide:
    """The upstream order at the fake Planet, and the manifest it serves (None when it has none)."""

    order: dict[str, Any]
    manifest: dict[str, Any] | None

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return {entry["path"]: entry for entry in (self.manifest or {}).get("files", [])}


def planet_side(stack: Any, order_id: str) -> PlanetSide:
    """What Planet (the fake) holds for the gateway's order ``order_id``: found by the ``[gw:<id>]`` tag
    the gateway puts in the name it sends, then read with the stack's Planet key like any client would."""
    admin = stack.planet_url.removesuffix("/compute/ops") + "/_fake/orders"
    tag = f"[gw:{order_id}]"
    upstream = [o for o in requests.get(admin, timeout=30).json()["orders"] if tag in o["name"]]
    assert len(upstream) == 1, f"expected one upstream order for {order_id}, found {len(upstream)}"
    headers = {"Authorization": f"api-key {stack.outputs['planet_api_key']}"}
    order = _retrying(requests.get, f"{stack.planet_url}/orders/v2/{upstream[0]['id']}", headers=headers)
    order.raise_for_status()
    body = order.json()
    links = {r["name"].split("/", 1)[1]: r for r in body.get("_links", {}).get("results", [])}
    manifest_link = links.get("manifest.json")
    manifest = None
    if manifest_link is not None and manifest_link.get("location"):
        manifest = _retrying(requests.get, manifest_link["location"]).json()
    return PlanetSide(body, manifest)


@dataclass
class Landed:
    """What an order's folder holds, every object re-downloaded and hashed."""

    prefix: str
    objects: dict[str, bytes]  # path inside the folder -> bytes
    delivery: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)

    @property
    def planet_files(self) -> set[str]:
        """Paths that are Planet's results (not manifest.json, delivery.json or our STAC catalog)."""
        return {p for p in self.objects if p not in GATEWAY_FILES and not p.startswith(STAC_FOLDER)}


def order_folder(tenant: str, order_id: str) -> str:
    return f"{RESULTS_PREFIX}/{tenant}/{order_id}/"


def bucket_name(stack: Any) -> str:
    return str(stack.outputs["stack_outputs"]["ResultsBucketName"])


def _keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]


def read_folder(stack: Any, tenant: str, order_id: str) -> Landed:
    """Every object of the order's folder, re-downloaded; object metadata digests checked against the bytes;
    objects naming the order outside its folder (other than the gateway's landing state) reported."""
    s3, bucket = stack.client("s3"), bucket_name(stack)
    prefix = order_folder(tenant, order_id)
    landed = Landed(prefix, {}, None)
    for key in _keys(s3, bucket, prefix):
        got = s3.get_object(Bucket=bucket, Key=key)
        data = got["Body"].read()
        path = key.removeprefix(prefix)
        landed.objects[path] = data
        metadata = got.get("Metadata", {})
        if "md5" in metadata and metadata["md5"] != hashlib.md5(data, usedforsecurity=False).hexdigest():
            landed.problems.append(f"{path}: object metadata md5 differs from the stored bytes'")
        if "sha256" in metadata and metadata["sha256"] != hashlib.sha256(data).hexdigest():
            landed.problems.append(f"{path}: object metadata sha256 differs from the stored bytes'")
    stray = [
        k for k in _keys(s3, bucket) if order_id in k and not k.startswith((prefix, LANDING_STATE_PREFIX))
    ]
    landed.problems += [f"{key}: outside the order's folder" for key in stray]
    if "delivery.json" in landed.objects:
        landed.delivery = json.loads(landed.objects["delivery.json"])
    return landed


def _zip_problems(path: str, data: bytes) -> tuple[list[str], list[str]]:
    """(problems, member paths) of a landed zip: every member's CRC, and its inner manifest's digests."""
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        return [f"{path}: not a zip archive ({exc})"], []
    bad = archive.testzip()
    if bad is not None:
        problems.append(f"{path}: member {bad} fails its CRC")
    members = archive.namelist()
    if "manifest.json" in members:
        for entry in json.loads(archive.read("manifest.json"))["files"]:
            body = archive.read(entry["path"])
            if (len(body), hashlib.sha256(body).hexdigest()) != (entry["size"], entry["digests"]["sha256"]):
                problems.append(f"{path}: member {entry['path']} differs from the archive's manifest.json")
    return problems, members


def verify_landed(landed: Landed, planet: PlanetSide) -> tuple[list[str], list[str]]:
    """(problems, archive member paths): the folder against Planet's manifest, file by file."""
    problems = list(landed.problems)
    expected = planet.files
    missing = sorted(set(expected) - landed.planet_files)
    extra = sorted(landed.planet_files - set(expected))
    problems += [f"{path}: in Planet's manifest.json but not landed" for path in missing]
    problems += [f"{path}: landed but not in Planet's manifest.json" for path in extra]
    members: list[str] = []
    for path, entry in expected.items():
        data = landed.objects.get(path)
        if data is None:
            continue
        digests = (
            len(data),
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        )
        if digests != (entry["size"], entry["digests"]["md5"], entry["digests"]["sha256"]):
            problems.append(f"{path}: size or digests differ from Planet's manifest.json")
        if path.endswith(".zip"):
            zip_problems, zip_members = _zip_problems(path, data)
            problems += zip_problems
            members += zip_members
    if "manifest.json" not in landed.objects:
        problems.append("manifest.json: not landed")
    if landed.delivery is None:
        problems.append("delivery.json: not written")
    else:
        listed = {f["path"]: f for f in landed.delivery["files"]}
        if set(listed) != set(expected):
            problems.append(f"delivery.json lists {sorted(listed)}, Planet's manifest {sorted(expected)}")
        for path, entry in expected.items():
            if path in listed and (listed[path]["md5"], listed[path]["sha256"]) != (
                entry["digests"]["md5"],
                entry["digests"]["sha256"],
            ):
                problems.append(f"{path}: delivery.json's digests differ from Planet's manifest.json")
    return problems, members


def open_catalog(stack: Any, landed: Landed) -> tuple[pystac.Catalog, list[pystac.Item]]:
    """The order's STAC catalog, opened by pystac straight from S3 (the key ``delivery.json`` names), and all
    its Items; every asset href it gives must exist in the order's folder (or in a landed archive)."""
    assert landed.delivery is not None and landed.delivery.get("stac_catalog"), (
        "delivery.json names no catalog"
    )
    s3, bucket = stack.client("s3"), bucket_name(stack)
    catalog = pystac.Catalog.from_file(
        f"s3://{bucket}/{landed.delivery['stac_catalog']}", stac_io=S3StacIO(s3)
    )
    items = list(catalog.get_items(recursive=True))
    folder = f"s3://{bucket}/{landed.prefix}"
    for item in items:
        for asset in item.assets.values():
            href = asset.get_absolute_href() or asset.href
            target = href.removeprefix("zip+").split("!/", 1)[0]
            assert target.startswith(folder), f"{item.id}: asset {href} outside the order's folder"
            assert target.removeprefix(folder) in landed.objects, f"{item.id}: asset {href} was not landed"
    return catalog, items


def hints_name(order: dict[str, Any], names: list[str]) -> list[str]:
    """The names no error hint of the order mentions."""
    hints = " ".join(order.get("error_hints") or [])
    return [name for name in names if name not in hints]
