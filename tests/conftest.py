"""Fixtures every suite shares: a clean AWS-less environment, a Lambda context, handlers and events."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

# Before anything can create a boto3 client: no real credentials, one region, UTC (moto's Wait states use
# local time), no X-Ray.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TZ": "UTC",
        "POWERTOOLS_SERVICE_NAME": "planet-orders-gateway",
        "POWERTOOLS_METRICS_NAMESPACE": "PlanetOrdersGateway",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import moto  # noqa: F401 - imported before boto3 clients exist, so mock_aws intercepts them
import pytest
from harness import PLANET_KEY, ROOT, AwsStack, FakeLambdaContext, send_through_requests
from order_core.adapters import dynamodb_http

# The orders and API keys tables read items by key over signed HTTP (http.client), which mock_aws does not
# intercept; it does intercept `requests`. Processes of the local stack keep http.client (tests/e2e).
dynamodb_http.transport = send_through_requests


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def fake_planet() -> Iterator[Any]:
    from planet_fake.config import FakePlanetConfig
    from planet_fake.server import start_in_thread

    server = start_in_thread(
        config=FakePlanetConfig(
            queued_seconds=0.2, running_seconds=0.2, file_size=64 * 1024, rate_limits=False
        )
    )
    yield server
    server.stop()


@pytest.fixture
def aws_stack(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, fake_planet: Any
) -> Iterator[AwsStack]:
    """Provision template.yaml in moto; tests marked ``execute_workflows`` run the state machine for real."""
    import boto3
    from gateway_local.lambda_runtime import InProcessLambdas
    from gateway_local.provision import Provisioner, ProvisionSettings, create_completion_events_queue
    from gateway_local.template import load_template
    from moto import mock_aws
    from order_core import wiring

    execute = request.node.get_closest_marker("execute_workflows") is not None
    with mock_aws(config={"stepfunctions": {"execute_state_machine": execute}}):
        settings = ProvisionSettings(
            secret_values={"PlanetApiKeySecret": PLANET_KEY},
            environment_overrides={
                "PLANET_API_URL": fake_planet.base_url,
                "DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
                "POLL_FIRST_WAIT_SECONDS": "2",
                "POLL_MAX_WAIT_SECONDS": "8",
                # short enough that the history guard keeps the 8 s cap the tests assert
                "POLL_DEADLINE_SECONDS": "3600",
                # no webhooks or sweeps here: each wait for a change times out at once and the order polls
                "WATCH_SECONDS": "1",
            },
        )
        resources = Provisioner(load_template(ROOT / "template.yaml"), boto3.client, settings).provision()
        for spec in resources.functions.values():
            for key, value in spec.environment.items():
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("ALLOW_HTTP_DOWNLOADS", "true")
        topics = [attrs["Ref"] for attrs in resources.of_type("AWS::SNS::Topic").values()]
        completion_queue = create_completion_events_queue(boto3.client, topics)
        lambdas = InProcessLambdas()
        for spec in resources.functions.values():
            lambdas.add(spec)
        lambdas.install()
        wiring.reset()
        try:
            yield AwsStack(resources, lambdas, fake_planet, completion_queue)
        finally:
            lambdas.uninstall()
            wiring.reset()
