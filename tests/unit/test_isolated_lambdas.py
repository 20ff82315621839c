"""Each local function runs in its own process with only the environment Lambda would give it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_local.lambda_runtime import FunctionSpec, IsolatedLambdas

HANDLER = """
import os, sys, time

def lambda_handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("print"):
        print("EMF-like line on stdout")
    return {"env": dict(os.environ), "function": context.function_name, "pid": os.getpid()}
"""


@pytest.fixture
def lambdas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    monkeypatch.setenv("DEVELOPER_SHELL_SECRET", "leak")  # must not reach any function
    registry = IsolatedLambdas({"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "us-east-1"})
    for name, environment in (("A", {"ONLY_A": "1", "SHARED": "a"}), ("B", {"SHARED": "b"})):
        registry.add(
            FunctionSpec(
                name,
                name,
                f"arn:aws:lambda:us-east-1:1:function:{name}",
                code,
                "app.lambda_handler",
                1,
                128,
                environment,
            )
        )
    registry.credentials["B"] = {"AWS_ACCESS_KEY_ID": "AKIAB", "AWS_SECRET_ACCESS_KEY": "secret-b"}
    yield registry
    registry.uninstall()


def _result(registry: IsolatedLambdas, name: str, event: dict) -> dict:
    invocation = registry.invoke(name, event)
    assert not invocation.errored, invocation.payload
    return json.loads(invocation.payload)


def test_isolated_lambdas_function_sees_only_its_own_environment(lambdas):
    a, b = _result(lambdas, "A", {}), _result(lambdas, "B", {})

    assert a["env"]["ONLY_A"] == "1" and a["env"]["SHARED"] == "a"
    assert "ONLY_A" not in b["env"] and b["env"]["SHARED"] == "b"
    assert "DEVELOPER_SHELL_SECRET" not in a["env"] | b["env"]
    assert a["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "A" and a["env"]["AWS_REGION"] == "us-east-1"
    assert b["env"]["AWS_ACCESS_KEY_ID"] == "AKIAB" and "AWS_ACCESS_KEY_ID" not in a["env"]
    assert a["pid"] != b["pid"]


def test_isolated_lambdas_sandbox_is_reused_and_stdout_does_not_break_it(lambdas):
    first = _result(lambdas, "A", {"print": True})
    second = _result(lambdas, "A", {})

    assert first["pid"] == second["pid"]


def test_isolated_lambdas_timeout_reports_timed_out_and_replaces_sandbox(lambdas):
    invocation = lambdas.invoke("A", {"sleep": 5})

    assert invocation.errored
    assert json.loads(invocation.payload)["errorType"] == "Sandbox.Timedout"
    assert _result(lambdas, "A", {})["function"] == "A"
