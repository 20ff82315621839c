"""The local stack's own machinery: resources from template.yaml, the HTTP front, the SQS trigger, moto.

These tests do not depend on what the project's handlers do, only on the stack that runs them.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gateway_local.api_front import ApiFront, ApiRoute
from gateway_local.esm import SqsPoller, SqsSource
from gateway_local.lambda_runtime import FunctionSpec, Invocation
from gateway_local.readiness import RunningStack
from gateway_local.stack import merged_environment
from gateway_local.template import Resource, TemplateError, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
MISSING_TOKEN = {"message": "Missing Authentication Token"}
REGION = "us-east-1"


def _resources(*types: str) -> list[Resource]:
    return list(TEMPLATE.of_type(*types))


def _id(resource: Resource) -> str:
    return resource.logical_id


# --- resources created from the template -------------------------------------------------------------------


@pytest.mark.parametrize("table", _resources("AWS::DynamoDB::Table"), ids=_id)
def test_table_from_template_exists_with_its_keys(local_stack: RunningStack, table: Resource) -> None:
    described = local_stack.client("dynamodb").describe_table(
        TableName=local_stack.resource(table.logical_id)["Ref"]
    )
    table_description = described["Table"]
    assert table_description["KeySchema"] == table.properties["KeySchema"]
    assert {index["IndexName"] for index in table_description.get("GlobalSecondaryIndexes", [])} == {
        index["IndexName"] for index in table.properties.get("GlobalSecondaryIndexes", [])
    }


@pytest.mark.parametrize("queue", _resources("AWS::SQS::Queue"), ids=_id)
def test_queue_from_template_exists_with_its_redrive_policy(
    local_stack: RunningStack, queue: Resource
) -> None:
    attributes = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.resource(queue.logical_id)["Ref"], AttributeNames=["All"]
    )["Attributes"]
    local_override = local_stack.outputs["queue_visibility_timeout"]  # LOCAL_QUEUE_VISIBILITY_TIMEOUT
    expected_timeout = local_override or queue.properties.get("VisibilityTimeout", 30)
    assert attributes["VisibilityTimeout"] == str(expected_timeout)
    template_redrive = queue.properties.get("RedrivePolicy")
    if template_redrive is None:
        assert "RedrivePolicy" not in attributes
        return
    dead_letter_id = template_redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": local_stack.resource(dead_letter_id)["Arn"],
        "maxReceiveCount": template_redrive["maxReceiveCount"],
    }


@pytest.mark.parametrize("topic", _resources("AWS::SNS::Topic"), ids=_id)
def test_topic_from_template_exists_and_feeds_the_completion_events_queue(
    local_stack: RunningStack, topic: Resource
) -> None:
    sns = local_stack.client("sns")
    topic_arn = local_stack.resource(topic.logical_id)["Ref"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    completion_queue_arn = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.outputs["completion_events_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    (subscription,) = [s for s in subscriptions if s["Endpoint"] == completion_queue_arn]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
        "Attributes"
    ]
    assert attributes["RawMessageDelivery"] == "false"
    # Encrypted with the stack's key, as in AWS.
    topic_key = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["KmsMasterKeyId"]
    assert topic_key == local_stack.resource("EventsKey")["Ref"]


@pytest.mark.parametrize("bucket", _resources("AWS::S3::Bucket"), ids=_id)
def test_bucket_from_template_exists(local_stack: RunningStack, bucket: Resource) -> None:
    name = local_stack.resource(bucket.logical_id)["Ref"]
    assert name == f"planet-gateway-{bucket.logical_id.lower()}"
    local_stack.client("s3").head_bucket(Bucket=name)


@pytest.mark.parametrize("secret", _resources("AWS::SecretsManager::Secret"), ids=_id)
def test_secret_from_template_exists_with_a_value(local_stack: RunningStack, secret: Resource) -> None:
    value = local_stack.client("secretsmanager").get_secret_value(
        SecretId=local_stack.resource(secret.logical_id)["Ref"]
    )["SecretString"]
    if secret.logical_id == "PlanetApiKeySecret":
        assert value == local_stack.outputs["planet_api_key"]
    else:
        assert value


@pytest.mark.parametrize("function", _resources("AWS::Serverless::Function"), ids=_id)
def test_function_from_template_has_its_handler_and_resolved_environment(
    local_stack: RunningStack, function: Resource
) -> None:
    configuration = local_stack.client("lambda").get_function_configuration(FunctionName=function.logical_id)
    environment = configuration["Environment"]["Variables"]
    template_environment = function.properties["Environment"]["Variables"]  # Globals merged in
    assert configuration["Handler"] == function.properties["Handler"]
    assert configuration["Timeout"] == function.properties["Timeout"]
    assert set(environment) == set(template_environment)
    for name, value in template_environment.items():
        if isinstance(value, dict) and value.get("Ref") in local_stack.outputs["resources"]:
            assert environment[name] == local_stack.resource(value["Ref"])["Ref"], name
    assert environment["PLANET_API_URL"] == local_stack.planet_url


@pytest.mark.parametrize("function", _resources("AWS::Serverless::Function"), ids=_id)
def test_function_runs_its_own_handler_in_process(local_stack: RunningStack, function: Resource) -> None:
    # An empty event: whatever the handler makes of it, it must have been imported from CodeUri and called.
    response = local_stack.client("lambda").invoke(FunctionName=function.logical_id, Payload=b"{}")
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        assert payload["errorType"] not in {
            "ResourceNotFoundException",
            "Runtime.ImportModuleError",
            "Runtime.HandlerNotFound",
        }, payload


@pytest.mark.parametrize("machine", _resources("AWS::Serverless::StateMachine"), ids=_id)
def test_state_machine_definition_has_its_substitutions(local_stack: RunningStack, machine: Resource) -> None:
    described = local_stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=local_stack.resource(machine.logical_id)["Ref"]
    )
    assert "${" not in described["definition"]
    for value in machine.properties["DefinitionSubstitutions"].values():
        logical_id, attribute = value["Fn::GetAtt"]
        assert local_stack.resource(logical_id)[attribute] in described["definition"]


def test_outputs_name_every_supported_resource_of_the_template(local_stack: RunningStack) -> None:
    supported = _resources(
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::SecretsManager::Secret",
        "AWS::Serverless::Function",
        "AWS::Serverless::StateMachine",
    )
    assert set(local_stack.outputs["resources"]) == {resource.logical_id for resource in supported}
    assert (
        local_stack.outputs["stack_outputs"]["IntakeQueueUrl"] == local_stack.resource("IntakeQueue")["Ref"]
    )


def test_wait_command_returns_once_the_stack_answers(local_stack: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_local", "wait", "--timeout", "10"],
        env={"LOCAL_STACK_STATE_DIR": str(local_stack.state_dir), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Local stack ready: {local_stack.api_url}"


# --- Step Functions and moto's Lambda go through the in-process runner ------------------------------------


def test_state_machine_task_error_name_is_the_runner_error_type(local_stack: RunningStack) -> None:
    # A function moto knows but the stack has no handler for: the runner answers ResourceNotFoundException,
    # and Step Functions must catch it by that name (moto's Docker runner would fail with "Exception").
    lambda_client, sfn = local_stack.client("lambda"), local_stack.client("stepfunctions")
    role = local_stack.client("iam").create_role(
        RoleName=f"smoke-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    function_arn = lambda_client.create_function(
        FunctionName=f"smoke-{uuid.uuid4().hex[:8]}",
        Runtime="python3.11",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": _zip_bytes()},
    )["FunctionArn"]
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload": {}},
                "Catch": [
                    {"ErrorEquals": ["ResourceNotFoundException"], "ResultPath": "$.error", "Next": "Ok"}
                ],
                "End": True,
            },
            "Ok": {"Type": "Succeed"},
        },
    }
    machine_arn = sfn.create_state_machine(
        name=f"smoke-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name=str(uuid.uuid4()), input="{}")[
        "executionArn"
    ]
    deadline = time.monotonic() + 30
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["error"]["Error"] == "ResourceNotFoundException"


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    return buffer.getvalue()


# --- the HTTP front -----------------------------------------------------------------------------------------


def _api_events() -> list[tuple[str, str, str]]:
    events = []
    for function in _resources("AWS::Serverless::Function"):
        for name, event in (function.properties.get("Events") or {}).items():
            if event["Type"] == "Api":
                events.append((name, event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return events


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/compute/ops/nope"), ("DELETE", "/compute/ops/orders/v2")]
)
def test_api_front_unknown_route_is_missing_authentication_token(
    local_stack: RunningStack, method: str, path: str
) -> None:
    base = local_stack.api_url.removesuffix("/compute/ops")
    response = requests.request(method, base + path, timeout=10)
    assert response.status_code == 403
    assert response.json() == MISSING_TOKEN


@pytest.mark.parametrize(("event", "method", "path"), _api_events(), ids=[e[0] for e in _api_events()])
def test_api_front_routes_every_template_api_event(
    local_stack: RunningStack, event: str, method: str, path: str
) -> None:
    # Path parameters get an id no order has; bodies are not JSON: no handler will change any state.
    url = local_stack.api_url.removesuffix("/compute/ops") + path.replace("{order_id}", str(uuid.uuid4()))
    response = requests.request(
        method, url, data=b"{not json" if method in {"POST", "PUT"} else None, timeout=30
    )
    assert response.headers.get("x-amzn-ErrorType") != "MissingAuthenticationTokenException", event


class RecordingFunction:
    """Stands in for a function behind the front or the SQS poller: records events, returns a result."""

    def __init__(self, result: Callable[[Any], Invocation]) -> None:
        self.events: list[Any] = []
        self._result = result

    def __call__(self, _function_name: str, event: Any) -> Invocation:
        self.events.append(event)
        return self._result(event)


def _proxy_result(status: int = 200, **extra: Any) -> Callable[[Any], Invocation]:
    return lambda _event: Invocation(json.dumps({"statusCode": status, "body": "{}", **extra}), errored=False)


@pytest.fixture
def front() -> Iterator[Callable[[RecordingFunction], str]]:
    """Start an ApiFront with two routes like the template's in this process; yields a starter → base URL."""
    fronts: list[ApiFront] = []

    def start(function: RecordingFunction, binary_media_types: tuple[str, ...] = ()) -> str:
        routes = [
            ApiRoute("Fn", "GET", "/compute/ops/orders/v2/{order_id}", "OrdersApi", "v1", binary_media_types),
            ApiRoute("Fn", "GET", "/compute/ops/orders/v2/stats", "OrdersApi", "v1", binary_media_types),
            ApiRoute("Fn", "POST", "/compute/ops/orders/v2", "OrdersApi", "v1", binary_media_types),
        ]
        api = ApiFront(routes, function, port=0)
        api.start()
        fronts.append(api)
        return f"http://127.0.0.1:{api.port}"

    yield start
    for api in fronts:
        api.stop()


def test_api_front_builds_the_rest_proxy_event(front: Callable[..., str]) -> None:
    function = RecordingFunction(_proxy_result())
    base = front(function)
    requests.get(f"{base}/compute/ops/orders/v2/abc/?x=1&x=2", headers={"X-Test": "yes"}, timeout=10)
    (event,) = function.events
    assert event["resource"] == "/compute/ops/orders/v2/{order_id}"
    assert event["path"] == "/compute/ops/orders/v2/abc/"  # trailing slash kept, as API Gateway does
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"order_id": "abc"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert event["headers"]["X-Test"] == "yes"
    assert event["multiValueHeaders"]["X-Test"] == ["yes"]
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "v1"
    assert context["domainName"] == base.removeprefix("http://")
    assert context["resourcePath"] == event["resource"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"]


def test_api_front_sends_null_query_and_prefers_literal_routes(front: Callable[..., str]) -> None:
    function = RecordingFunction(_proxy_result())
    base = front(function)
    requests.get(f"{base}/compute/ops/orders/v2/stats", timeout=10)
    (event,) = function.events
    assert event["resource"] == "/compute/ops/orders/v2/stats"
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


@pytest.mark.parametrize(
    ("binary_media_types", "expected_base64"), [(("*/*",), True), ((), False)], ids=["binary-all", "text"]
)
def test_api_front_encodes_bodies_matching_binary_media_types(
    front: Callable[..., str], binary_media_types: tuple[str, ...], expected_base64: bool
) -> None:
    function = RecordingFunction(_proxy_result(202))
    base = front(function, binary_media_types)
    response = requests.post(f"{base}/compute/ops/orders/v2", json={"name": "x"}, timeout=10)
    assert response.status_code == 202
    (event,) = function.events
    assert event["isBase64Encoded"] is expected_base64
    body = base64.b64decode(event["body"]) if expected_base64 else event["body"].encode()
    assert json.loads(body) == {"name": "x"}


def test_api_front_maps_the_proxy_response_back(front: Callable[..., str]) -> None:
    result = {
        "statusCode": 302,
        "headers": {"Location": "http://example.invalid/x"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    base = front(RecordingFunction(lambda _event: Invocation(json.dumps(result), errored=False)))
    response = requests.get(f"{base}/compute/ops/orders/v2/abc", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://example.invalid/x"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.content == b"\x00\x01"
    assert response.headers["Content-Type"] == "application/json"  # API Gateway's default


@pytest.mark.parametrize(
    "invocation",
    [
        Invocation(json.dumps({"errorType": "KeyError", "errorMessage": "'x'"}), errored=True),
        Invocation(json.dumps({"no": "statusCode"}), errored=False),
    ],
    ids=["function-error", "invalid-proxy-response"],
)
def test_api_front_answers_502_when_the_function_fails(
    front: Callable[..., str], invocation: Invocation
) -> None:
    base = front(RecordingFunction(lambda _event: invocation))
    response = requests.get(f"{base}/compute/ops/orders/v2/abc", timeout=10)
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


# --- the SQS event source mapping, against the stack's moto ------------------------------------------------

MAX_RECEIVE_COUNT = 2


@pytest.fixture
def queue_pair(local_stack: RunningStack) -> dict[str, str]:
    """A test-only queue with a 1 s visibility timeout and a dead-letter queue after 2 receives."""
    sqs = local_stack.client("sqs")
    name = f"esm-smoke-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url = sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn, "dlq_url": dlq_url}


def _poller(
    stack: RunningStack, queue: dict[str, str], function: RecordingFunction, **options: Any
) -> SqsPoller:
    source = SqsSource(
        function_name="SmokeFunction",
        queue_url=queue["url"],
        queue_arn=queue["arn"],
        batch_size=10,
        **options,
    )
    return SqsPoller(source, stack.client("sqs"), function, REGION)


def _batch_failures(*bodies: str) -> Callable[[Any], Invocation]:
    def result(event: Any) -> Invocation:
        failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in bodies]
        return Invocation(json.dumps({"batchItemFailures": failed}), errored=False)

    return result


def _send(stack: RunningStack, queue_url: str, *bodies: str) -> None:
    stack.client("sqs").send_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {
                "Id": str(index),
                "MessageBody": body,
                "MessageAttributes": {"tenant": {"DataType": "String", "StringValue": "t-1"}},
            }
            for index, body in enumerate(bodies)
        ],
    )


def _bodies(stack: RunningStack, queue_url: str, expected: int, timeout: float = 5) -> list[str]:
    """Bodies received until ``expected`` arrived or ``timeout`` passed (0: watch for the whole timeout)."""
    sqs = stack.client("sqs")
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (expected == 0 or len(found) < expected):
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found += [message["Body"] for message in response.get("Messages", [])]
    return sorted(found)


def test_esm_delivers_a_lambda_sqs_event(local_stack: RunningStack, queue_pair: dict[str, str]) -> None:
    function = RecordingFunction(_batch_failures())
    _send(local_stack, queue_pair["url"], "a")
    assert _poller(local_stack, queue_pair, function).poll_once() == 1
    (record,) = function.events[0]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == "a"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_pair["arn"]
    assert record["awsRegion"] == REGION
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(record["attributes"])
    assert record["messageAttributes"] == {
        "tenant": {"stringValue": "t-1", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }


def test_esm_deletes_succeeded_messages_and_leaves_reported_failures(
    local_stack: RunningStack, queue_pair: dict[str, str]
) -> None:
    function = RecordingFunction(_batch_failures("bad"))
    _send(local_stack, queue_pair["url"], "ok-1", "bad", "ok-2")
    poller = _poller(local_stack, queue_pair, function, report_batch_item_failures=True)
    assert poller.poll_once() == 3
    assert [sorted(r["body"] for r in e["Records"]) for e in function.events] == [["bad", "ok-1", "ok-2"]]
    assert _bodies(local_stack, queue_pair["url"], expected=1) == ["bad"]  # back after its visibility timeout


@pytest.mark.parametrize(
    "result",
    [
        lambda _event: Invocation(json.dumps({"errorType": "Boom", "errorMessage": "x"}), errored=True),
        lambda _event: Invocation(json.dumps({"batchItemFailures": [{"itemIdentifier": "unknown"}]}), False),
    ],
    ids=["function-error", "unknown-item-identifier"],
)
def test_esm_keeps_the_whole_batch_when_the_invocation_fails(
    local_stack: RunningStack, queue_pair: dict[str, str], result: Callable[[Any], Invocation]
) -> None:
    _send(local_stack, queue_pair["url"], "m-1", "m-2")
    poller = _poller(local_stack, queue_pair, RecordingFunction(result), report_batch_item_failures=True)
    assert poller.poll_once() == 2
    assert _bodies(local_stack, queue_pair["url"], expected=2) == ["m-1", "m-2"]


def test_esm_without_report_batch_item_failures_deletes_the_whole_batch(
    local_stack: RunningStack, queue_pair: dict[str, str]
) -> None:
    _send(local_stack, queue_pair["url"], "m-1", "bad")
    poller = _poller(local_stack, queue_pair, RecordingFunction(_batch_failures("bad")))
    assert poller.poll_once() == 2
    assert _bodies(local_stack, queue_pair["url"], expected=0, timeout=2.5) == []


def test_moto_moves_a_message_to_the_dead_letter_queue_after_max_receive_count(
    local_stack: RunningStack, queue_pair: dict[str, str]
) -> None:
    function = RecordingFunction(_batch_failures("poison"))
    _send(local_stack, queue_pair["url"], "poison")
    poller = _poller(local_stack, queue_pair, function, report_batch_item_failures=True)
    sqs = local_stack.client("sqs")

    def dead_letters() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_pair["dlq_url"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    deadline = time.monotonic() + 20
    while not dead_letters():  # moto moves it on the first receive after maxReceiveCount receives
        assert time.monotonic() < deadline
        poller.poll_once()
    receive_counts = [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in function.events]
    assert receive_counts == [str(count) for count in range(1, MAX_RECEIVE_COUNT + 1)]
    assert _bodies(local_stack, queue_pair["dlq_url"], expected=1) == ["poison"]


def test_moto_delivers_sns_to_sqs_in_the_envelope_without_raw_delivery(local_stack: RunningStack) -> None:
    sns, sqs = local_stack.client("sns"), local_stack.client("sqs")
    topic_arn = sns.create_topic(Name=f"smoke-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"smoke-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(
        TopicArn=topic_arn,
        Message='{"order_id": "o-1"}',
        MessageAttributes={"state": {"DataType": "String", "StringValue": "success"}},
    )
    (body,) = _bodies(local_stack, queue_url, expected=1)
    envelope = json.loads(body)
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic_arn
    assert json.loads(envelope["Message"]) == {"order_id": "o-1"}
    assert envelope["MessageAttributes"] == {"state": {"Type": "String", "Value": "success"}}


# --- the process-wide environment ---------------------------------------------------------------------------


def _spec(name: str, environment: dict[str, str]) -> FunctionSpec:
    return FunctionSpec(name, name, f"arn:{name}", Path("."), "app.lambda_handler", 3, 128, environment)


def test_merged_environment_rejects_a_variable_two_functions_set_differently() -> None:
    assert merged_environment([_spec("A", {"X": "1", "Y": "2"}), _spec("B", {"X": "1"})]) == {
        "X": "1",
        "Y": "2",
    }
    with pytest.raises(TemplateError, match="X is '1' in A but '2' in B"):
        merged_environment([_spec("A", {"X": "1"}), _spec("B", {"X": "2"})])
