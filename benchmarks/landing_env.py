"""What the landing benchmarks share: the local servers, the orders, the three contenders, the report.

The servers run as their own processes, so each gets its own interpreter (GIL) as in real life and none of
them is measured as part of a contender:

* the fake Planet (``python -m planet_fake``), rate limits off, orders done after half a second;
* the local S3 endpoint: a moto server (``python -m moto.server``), with the template's resources created
  in it by the local stack's own provisioning code (``gateway_local.provision``).

Each contender is its own process too, timed from spawn to exit (interpreter start and imports included):

* ``FinalizeFunction``: ``functions/finalize/app.py``'s ``lambda_handler`` with ``action: land`` called as
  the state machine does, until it says complete (``_land_child.py``);
* the plain loop a user would write: ``requests.get(..., stream=True)`` → ``boto3 upload_fileobj``, one
  file after another, verifying nothing (``_plain_loop_child.py``);
* ``planet orders download`` (the SDK's CLI) of the same order to a local directory.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "RESULTS.md"
PYTHON = sys.executable
PLANET_CLI = str(Path(sys.executable).with_name("planet"))
REGION = "us-east-1"
PLANET_KEY = "PLAK-bench"
TENANT = "bench"
MIB = 1024 * 1024
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout} s")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "FAKE_PLANET_"))}
    env.update(CREDENTIALS)
    env.update({"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "TZ": "UTC", "PYTHONUNBUFFERED": "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "shared"), str(ROOT / "local")])
    return env


@dataclass
class Servers:
    planet_url: str  # http://127.0.0.1:<port>
    aws_endpoint: str
    function_env: dict[str, str]
    bucket: str
    table: str
    pids: dict[str, int] = field(default_factory=dict)  # "planet", "s3": their processes

    def cpu_seconds(self, name: str) -> float:
        """CPU time (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.pids[name]}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def planet_api(self) -> str:
        return f"{self.planet_url}/compute/ops"

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.aws_endpoint, region_name=REGION, **_lower(CREDENTIALS))


def _lower(values: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in values.items()}


@contextmanager
def local_servers(log_dir: Path, *, moto_in_memory_bytes: int | None = None) -> Iterator[Servers]:
    """Start the fake Planet and a moto server, create the template's resources; stop both at the end.

    ``moto_in_memory_bytes``: objects and parts up to this size stay in moto's memory instead of being
    written to a temporary file (moto's default spills anything over ~5 MiB to disk).
    """
    planet_port, aws_port = free_port(), free_port()
    env = base_env()
    moto_env = dict(env)
    if moto_in_memory_bytes:
        moto_env["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(moto_in_memory_bytes)
    fake_env = {
        **env,
        "FAKE_PLANET_RATE_LIMITS": "false",
        "FAKE_PLANET_QUEUED_SECONDS": "0",
        "FAKE_PLANET_RUNNING_SECONDS": "0.5",
        "FAKE_PLANET_LINK_TTL_SECONDS": "3600",
    }
    processes = []
    try:
        with (log_dir / "planet_fake.log").open("wb") as log:
            fake = subprocess.Popen(
                [PYTHON, "-m", "planet_fake", "--host", "127.0.0.1", "--port", str(planet_port)],
                env=fake_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(fake)
        with (log_dir / "moto.log").open("wb") as log:
            moto = subprocess.Popen(
                [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(aws_port)],
                env=moto_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(moto)
        planet_url, aws_endpoint = f"http://127.0.0.1:{planet_port}", f"http://127.0.0.1:{aws_port}"
        _wait_for(f"{planet_url}/_fake/config", fake, "the fake Planet")
        _wait_for(f"{aws_endpoint}/moto-api/", moto, "the moto server")
        servers = _provision(planet_url, aws_endpoint)
        servers.pids = {"planet": fake.pid, "s3": moto.pid}
        yield servers
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _provision(planet_url: str, aws_endpoint: str) -> Servers:
    import boto3
    from gateway_local.provision import Provisioner, ProvisionSettings
    from gateway_local.template import load_template

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_endpoint, region_name=REGION, **_lower(CREDENTIALS))

    resources = Provisioner(
        load_template(ROOT / "template.yaml"),
        client,
        ProvisionSettings(
            secret_values={"PlanetApiKeySecret": PLANET_KEY},
            environment_overrides={
                "PLANET_API_URL": f"{planet_url}/compute/ops",
                "DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
            },
        ),
    ).provision()
    function_env = dict(resources.functions["FinalizeFunction"].environment)
    function_env.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "ALLOW_HTTP_DOWNLOADS": "true",  # local mode: the fake serves plain HTTP on 127.0.0.1
            # The fake's rate limits are off for every contender, so the function's pacing is off too.
            "DOWNLOAD_REQUESTS_PER_SECOND": "0",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    return Servers(
        planet_url,
        aws_endpoint,
        function_env,
        resources.attributes["ResultsBucket"]["Ref"],
        resources.attributes["OrdersTable"]["Ref"],
    )


# --- orders -----------------------------------------------------------------------------------------------


@dataclass
class BenchOrder:
    label: str
    upstream_id: str
    files: int  # result files, manifest.json included
    bytes: int  # all of them


def basemaps_order(servers: Servers, label: str, quads: int, file_size: int) -> BenchOrder:
    """An order of ``quads`` files of ``file_size`` bytes each (one basemap quad is one file)."""
    requests.post(
        f"{servers.planet_url}/_fake/config", json={"file_size": file_size}, timeout=10
    ).raise_for_status()
    headers = {"Authorization": f"api-key {PLANET_KEY}"}
    body = {
        "name": label,
        "source_type": "basemaps",
        "products": [
            {"mosaic_name": "global_monthly_2022_01_mosaic", "quad_ids": [f"{i}-1374" for i in range(quads)]}
        ],
    }
    created = requests.post(f"{servers.planet_api}/orders/v2", json=body, headers=headers, timeout=30)
    created.raise_for_status()
    order_id = created.json()["id"]
    while True:
        order = requests.get(f"{servers.planet_api}/orders/v2/{order_id}", headers=headers, timeout=30).json()
        if order["state"] == "success":
            break
        time.sleep(0.2)
    # Every contender starts with the fake's digests computed (fetching the manifest waits for them).
    results = order["_links"]["results"]
    manifest = requests.get(results[0]["location"], timeout=600)
    manifest.raise_for_status()
    total = len(manifest.content) + sum(entry["size"] for entry in manifest.json()["files"])
    return BenchOrder(label, order_id, len(results), total)


def seed_record(servers: Servers, order: BenchOrder) -> str:
    """Our order record for an upstream order that has succeeded: what LandResults finds in AWS."""
    saved = dict(os.environ)
    os.environ.update(base_env())
    os.environ.update(servers.function_env)
    try:
        from order_core.adapters.orders_repo import OrdersRepository
        from order_core.models.order import OrderRecord, Phase
        from order_core.models.planet import OrderState

        order_id = str(uuid.uuid4())
        OrdersRepository(servers.table).create(
            OrderRecord(
                order_id=order_id,
                tenant=TENANT,
                name=order.label,
                source_type="basemaps",
                request={"name": order.label},
                state=OrderState.running,
                phase=Phase.DELIVERING,
                upstream_order_id=order.upstream_id,
                upstream_state="success",
            )
        )
        return order_id
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- contenders -------------------------------------------------------------------------------------------


@dataclass
class Run:
    contender: str
    seconds: float
    peak_rss_mb: float | None = None
    verified: str = "-"
    note: str = ""
    peak_buffer_mb: float | None = None
    cpu_seconds: float = 0.0  # the contender's own process
    s3_cpu_seconds: float = 0.0  # the S3 endpoint (moto) while the contender ran
    planet_cpu_seconds: float = 0.0  # the fake Planet while the contender ran


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(
    servers: Servers, args: list[str], env: dict[str, str], log: Path
) -> tuple[float, int, dict[str, float]]:
    """Run one contender process; its wall time, exit code and the CPU seconds it and the servers used."""
    before = {"self": _children_cpu(), **{name: servers.cpu_seconds(name) for name in servers.pids}}
    started = time.perf_counter()
    with log.open("ab") as out:
        completed = subprocess.run(args, env=env, stdout=out, stderr=out, check=False)
    seconds = time.perf_counter() - started
    after = {"self": _children_cpu(), **{name: servers.cpu_seconds(name) for name in servers.pids}}
    return seconds, completed.returncode, {name: after[name] - before[name] for name in before}


def _run_child(
    servers: Servers, args: list[str], env: dict[str, str], log: Path
) -> tuple[float, dict[str, float], dict[str, Any]]:
    result_file = Path(tempfile.mkstemp(prefix="bench-", suffix=".json")[1])
    try:
        seconds, code, cpu = _timed(servers, [*args, str(result_file)], env, log)
        if code != 0:
            raise RuntimeError(f"{args[1]} failed ({code}); see {log}")
        return seconds, cpu, json.loads(result_file.read_text() or "{}")
    finally:
        result_file.unlink(missing_ok=True)


def run_finalize(servers: Servers, order: BenchOrder, log: Path) -> Run:
    order_id = seed_record(servers, order)
    env = {**base_env(), **servers.function_env}
    args = [PYTHON, str(BENCH / "_land_child.py"), order_id, TENANT]
    seconds, cpu, child = _run_child(servers, args, env, log)
    check_landed(servers, f"orders/{TENANT}/{order_id}/", order)
    return Run(
        "FinalizeFunction (ours)",
        seconds,
        child["peak_rss_mb"],
        "size + md5 + sha256",
        peak_buffer_mb=child.get("peak_buffer_mb"),
        cpu_seconds=cpu["self"],
        s3_cpu_seconds=cpu["s3"],
        planet_cpu_seconds=cpu["planet"],
    )


PLAIN_LOOP = "requests -> upload_fileobj loop"
CHECKED_LOOP = "the same loop + md5/sha256 check"


def run_plain_loop(servers: Servers, order: BenchOrder, log: Path, *, verify: bool = False) -> Run:
    prefix = f"plain/{uuid.uuid4()}/"
    env = {**base_env(), "AWS_ENDPOINT_URL": servers.aws_endpoint}
    args = [PYTHON, str(BENCH / "_plain_loop_child.py"), *(["--verify"] if verify else [])]
    args += [servers.planet_api, PLANET_KEY, order.upstream_id]
    seconds, cpu, child = _run_child(servers, [*args, servers.bucket, prefix], env, log)
    check_landed(servers, prefix, order)
    return Run(
        CHECKED_LOOP if verify else PLAIN_LOOP,
        seconds,
        child["peak_rss_mb"],
        "size + md5 + sha256, after upload" if verify else "nothing",
        cpu_seconds=cpu["self"],
        s3_cpu_seconds=cpu["s3"],
        planet_cpu_seconds=cpu["planet"],
    )


def run_checked_loop(servers: Servers, order: BenchOrder, log: Path) -> Run:
    """The plain loop as a careful user would write it: hashing in the stream, compared afterwards."""
    return run_plain_loop(servers, order, log, verify=True)


def run_planet_cli(servers: Servers, order: BenchOrder, log: Path) -> Run:
    directory = Path(tempfile.mkdtemp(prefix="bench-planet-"))
    env = {**base_env(), "PL_API_KEY": PLANET_KEY}
    args = [PLANET_CLI, "orders", "-u", servers.planet_api, "download", "--directory", str(directory)]
    try:
        seconds, code, cpu = _timed(servers, [*args, order.upstream_id], env, log)
        if code != 0:
            raise RuntimeError(f"planet orders download failed ({code}); see {log}")
        landed = [p for p in directory.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in landed)
        if len(landed) != order.files or size != order.bytes:
            raise RuntimeError(
                f"planet CLI wrote {len(landed)} files / {size} B, expected {order.files} / {order.bytes}"
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return Run(
        "planet orders download (to disk)",
        seconds,
        None,
        "nothing",
        cpu_seconds=cpu["self"],
        planet_cpu_seconds=cpu["planet"],
    )


def check_landed(servers: Servers, prefix: str, order: BenchOrder) -> None:
    """Every file arrived whole (counts and bytes), whoever landed it; then free the S3 endpoint's memory."""
    s3 = servers.s3()
    keys, size = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=servers.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("delivery.json"):
                keys.append(item["Key"])
                size += item["Size"]
    if len(keys) != order.files or size != order.bytes:
        raise RuntimeError(
            f"{prefix}: {len(keys)} files / {size} B landed, expected {order.files} / {order.bytes}"
        )
    for start in range(0, len(keys), 1000):
        s3.delete_objects(
            Bucket=servers.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]}
        )


# --- the report -------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import boto3
    import moto

    return (
        f"{os.cpu_count()} x {cpu}{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, boto3 {boto3.__version__}, moto {moto.__version__}"
    )


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_section(begin: str, end: str, section: str) -> None:
    """Replace only this benchmark's section of RESULTS.md (other benchmarks own the rest of the file)."""
    body = f"{begin}\n{section.rstrip()}\n{end}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + body + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6
