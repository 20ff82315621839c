"""Configuration from the environment and the `python -m planet_fake` entry point."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pydantic
import pytest
import requests
from planet_fake.config import FakePlanetConfig


def test_config_from_env_reads_prefixed_variables() -> None:
    config = FakePlanetConfig.from_env(
        {
            "FAKE_PLANET_QUEUED_SECONDS": "0.25",
            "FAKE_PLANET_FILE_SIZE": "1024",
            "FAKE_PLANET_RATE_LIMITS": "false",
            "FAKE_PLANET_API_KEYS": "alpha, beta,",
            "FAKE_PLANET_OUTCOME": "partial",
            "FAKE_PLANET_STORAGE_BASE_URL": "http://storage.local:9000/",
            "UNRELATED": "ignored",
        }
    )

    assert config.queued_seconds == 0.25
    assert config.file_size == 1024
    assert config.rate_limits is False
    assert config.api_keys == ("alpha", "beta")
    assert config.outcome == "partial"
    assert config.storage_base_url == "http://storage.local:9000"
    assert config.running_seconds == FakePlanetConfig().running_seconds


def test_config_from_env_with_empty_outcome_means_natural_outcomes() -> None:
    assert FakePlanetConfig.from_env({"FAKE_PLANET_OUTCOME": ""}).outcome is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FAKE_PLANET_RUNNING_SECONDS", "soon"),
        ("FAKE_PLANET_OUTCOME", "great"),
        ("FAKE_PLANET_PAGE_SIZE", "0"),
    ],
)
def test_config_from_env_invalid_value_raises(name: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        FakePlanetConfig.from_env({name: value})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_module_entry_point_serves_api_on_env_port() -> None:
    port = _free_port()
    env = {**os.environ, "PLANET_FAKE_PORT": str(port), "FAKE_PLANET_API_KEYS": "cli-key"}
    process = subprocess.Popen(
        [sys.executable, "-m", "planet_fake"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = f"http://127.0.0.1:{port}/compute/ops/stats/orders/v2"
        deadline = time.monotonic() + 10
        while True:
            try:
                accepted = requests.get(url, headers={"Authorization": "api-key cli-key"}, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        refused = requests.get(url, headers={"Authorization": "api-key other"}, timeout=2)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert f"http://127.0.0.1:{port}/compute/ops" in banner
    assert accepted.status_code == 200
    assert refused.status_code == 401
