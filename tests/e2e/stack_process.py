"""Starting `python -m gateway_local up` in a subprocess on free ports, for the e2e suite's fixtures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gateway_local.readiness import RunningStack, not_answering, read_outputs

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60
_STACK_ENV = {
    "FAKE_PLANET_QUEUED_SECONDS": "1",
    "FAKE_PLANET_RUNNING_SECONDS": "1",
    "FAKE_PLANET_FILE_SIZE": "65536",
    # Failed intake messages come back after 2 s instead of the template's 360.
    "LOCAL_QUEUE_VISIBILITY_TIMEOUT": "2",
    "TZ": "UTC",
    "PYTHONUNBUFFERED": "1",
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:  # all bound at once, so the three differ
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait_until_ready(process: subprocess.Popen[bytes], state_dir: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-6000:]
            pytest.fail(f"local stack exited with {process.returncode} during startup:\n{tail}")
        outputs = read_outputs(state_dir)
        if outputs is not None and not not_answering(outputs):
            return outputs
        time.sleep(0.2)
    pytest.fail(f"local stack not ready after {STARTUP_TIMEOUT_SECONDS} s:\n{log_path.read_text()[-6000:]}")


@contextmanager
def running_stack(state_dir: Path, **extra_env: str) -> Iterator[RunningStack]:
    """`python -m gateway_local up` on free ports, stopped on exit; ``extra_env`` overrides the defaults."""
    log_path = state_dir / "stack.log"
    api_port, aws_port, planet_port = _free_ports(3)
    env = {
        **os.environ,
        **_STACK_ENV,
        **extra_env,
        "API_PORT": str(api_port),
        "AWS_PORT": str(aws_port),
        "PLANET_PORT": str(planet_port),
        "LOCAL_STACK_STATE_DIR": str(state_dir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway_local", "up"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        outputs = _wait_until_ready(process, state_dir, log_path)
        yield RunningStack(outputs, state_dir, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode != 0:
            print(f"local stack exited with {process.returncode}:\n{log_path.read_text()[-6000:]}")


def new_key(stack: Any, tenant: str) -> str:
    """A fresh API key for ``tenant`` on a running local stack, made the way a user makes one."""
    env = {**os.environ, "LOCAL_STACK_STATE_DIR": str(stack.state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway_local", "keys", "create", "--tenant", tenant],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()
