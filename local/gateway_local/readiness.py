"""Find a running local stack, tell whether it answers, and talk to it (no moto import: scripts use this)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # local/gateway_local/ → the repository
OUTPUTS_FILE = "outputs.json"


@dataclass
class RunningStack:
    """A running local stack as other processes see it: its ``outputs.json`` and clients for its AWS."""

    outputs: dict[str, Any]
    state_dir: Path
    log_path: Path | None = None  # where its console went, when the caller started it

    @property
    def api_url(self) -> str:
        return str(self.outputs["api_url"])

    @property
    def aws_endpoint(self) -> str:
        return str(self.outputs["aws_endpoint"])

    @property
    def planet_url(self) -> str:
        return str(self.outputs["planet_url"])

    def resource(self, logical_id: str) -> dict[str, str]:
        """Ref and attributes of a template resource, e.g. ``resource("IntakeQueue")["Arn"]``."""
        return dict(self.outputs["resources"][logical_id])

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's AWS endpoint (dummy credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.outputs["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
        )

    def log_tail(self, lines: int = 80) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def default_state_dir() -> Path:
    """Where ``up`` writes ``outputs.json``: $LOCAL_STACK_STATE_DIR or <project>/.local-stack."""
    configured = os.environ.get("LOCAL_STACK_STATE_DIR")
    return Path(configured) if configured else PROJECT_ROOT / ".local-stack"


def health_urls(outputs: dict[str, Any]) -> dict[str, str]:
    """One URL per server; any HTTP answer (403 and 404 included) means the server is up."""
    ports = outputs["ports"]
    return {
        "api": f"{outputs['api_url']}/",
        "aws": f"{outputs['aws_endpoint']}/moto-api/",
        "planet": f"http://127.0.0.1:{ports['planet']}/",
    }


def not_answering(outputs: dict[str, Any]) -> list[str]:
    """Names of the servers that do not answer HTTP yet."""
    silent = []
    for name, url in health_urls(outputs).items():
        try:
            requests.get(url, timeout=2, allow_redirects=False)
        except requests.RequestException:
            silent.append(name)
    return silent


def read_outputs(state_dir: Path) -> dict[str, Any] | None:
    """The outputs of a live stack, or None (no file, or the process that wrote it is gone)."""
    try:
        outputs: dict[str, Any] = json.loads((state_dir / OUTPUTS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(int(outputs["pid"]), 0)
    except ProcessLookupError:
        return None  # left behind by a stack that was killed
    except PermissionError:
        pass  # alive, owned by someone else
    return outputs


def wait_until_ready(state_dir: Path, timeout: float = 60.0) -> RunningStack:
    """Block until a stack has written its outputs and all its servers answer."""
    deadline = time.monotonic() + timeout
    while True:
        outputs = read_outputs(state_dir)
        if outputs is not None and not not_answering(outputs):
            return RunningStack(outputs, state_dir)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no ready local stack in {state_dir} after {timeout:.0f} s")
        time.sleep(0.25)
