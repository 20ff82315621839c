"""DynamoDB reads by key over signed HTTP (order_core.adapters.dynamodb_http): what boto3 does, without it.

A scripted transport stands in for the network (no sockets, no moto); botocore's own signer, serializer and
deserializer are the reference the adapter must agree with. tests/integration/test_dynamodb_http_under_moto.py
reads real items from moto.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from order_core.adapters import dynamodb_http
from order_core.adapters.dynamodb_http import Credentials, DynamoDBTable, HttpResponse

NOW = datetime(2026, 11, 30, 22, 0, 5, tzinfo=UTC)
ITEM = {
    "order_id": {"S": "o-1"},
    "count": {"N": "42"},
    "ratio": {"N": "0.125"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "blob": {"B": "aGVsbG8="},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "blobs": {"BS": ["aGk="]},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}}},
}


class Script:
    """A transport answering from a script (a response or an OSError per call), recording each request."""

    def __init__(self, *answers: HttpResponse | OSError) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def __call__(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> HttpResponse:
        self.requests.append((url, headers, json.loads(body)))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer


def ok(payload: dict[str, Any], *, crc: int | None = None) -> HttpResponse:
    body = json.dumps(payload).encode()
    return HttpResponse(200, {"x-amz-crc32": str(zlib.crc32(body) if crc is None else crc)}, body)


def error(status: int, code: str, message: str = "no") -> HttpResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return HttpResponse(status, {"x-amzn-requestid": "req-1"}, body)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def table(sleeps: list[float]) -> DynamoDBTable:
    return DynamoDBTable("orders", sleep=sleeps.append)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    transport = Script()
    monkeypatch.setattr(dynamodb_http, "transport", transport)
    yield transport


def botocore_authorization(url: str, headers: dict[str, str], body: bytes, credentials: Credentials) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    signer = SigV4Auth(
        BotocoreCredentials(credentials.access_key, credentials.secret_key, credentials.token),
        "dynamodb",
        "eu-west-1",
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("token", [None, "session-token"], ids=["keys", "session"])
@pytest.mark.parametrize(
    "url", ["https://dynamodb.eu-west-1.amazonaws.com", "http://127.0.0.1:5000/"], ids=["aws", "local"]
)
def test_sign_request_signed_as_botocore_signs_it(token: str | None, url: str) -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret/key+example", token)
    body = b'{"TableName":"orders","Key":{"order_id":{"S":"o-1"}}}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}

    signed = dynamodb_http.sign(url, headers, body, credentials=credentials, region="eu-west-1", now=NOW)

    expected = botocore_authorization(url, {**headers, "X-Amz-Date": "20261130T220005Z"}, body, credentials)
    assert signed["Authorization"] == expected
    assert signed.get("X-Amz-Security-Token") == token


def test_deserialize_items_as_boto3_resource_gives_them() -> None:
    from boto3.dynamodb.types import TypeDeserializer

    parsed = {**ITEM, "blob": {"B": b"hello"}, "blobs": {"BS": [b"hi"]}}  # botocore decodes base64 first
    reference = {key: TypeDeserializer().deserialize(value) for key, value in parsed.items()}
    reference["blob"] = bytes(reference["blob"].value)  # boto3's Binary: bytes() is what callers use
    reference["blobs"] = {bytes(value.value) for value in reference["blobs"]}

    assert {key: dynamodb_http.deserialize(value) for key, value in ITEM.items()} == reference


@pytest.mark.parametrize(
    "value",
    ["text", 7, Decimal("1.5"), True, None, b"\x00\xff", {"a": [1, "b"]}, {"x", "y"}, {1, 2}],
    ids=repr,
)
def test_serialize_values_as_boto3_resource_sends_them(value: Any) -> None:
    from boto3.dynamodb.types import TypeSerializer

    ours = dynamodb_http.serialize(value)
    theirs = TypeSerializer().serialize(value)
    if "B" in theirs:
        theirs = {"B": __import__("base64").b64encode(theirs["B"]).decode()}  # base64 on the wire
    for kind in ("SS", "NS"):
        if kind in theirs:
            ours, theirs = {kind: sorted(ours[kind])}, {kind: sorted(theirs[kind])}
    assert ours == theirs


def test_serialize_float_refused_as_boto3_refuses_it() -> None:
    with pytest.raises(TypeError):
        dynamodb_http.serialize(1.5)


def test_get_item_found_answers_the_item_with_python_values(table: DynamoDBTable, script: Script) -> None:
    script.answers.append(ok({"Item": {"order_id": {"S": "o-1"}, "count": {"N": "3"}}}))

    answer = table.get_item(Key={"order_id": "o-1"}, ConsistentRead=True)

    assert answer == {"Item": {"order_id": "o-1", "count": Decimal(3)}}
    url, headers, body = script.requests[0]
    assert url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert body == {"TableName": "orders", "Key": {"order_id": {"S": "o-1"}}, "ConsistentRead": True}


def test_get_item_missing_answers_no_item(table: DynamoDBTable, script: Script) -> None:
    script.answers.append(ok({}))

    assert "Item" not in table.get_item(Key={"order_id": "nope"})
    assert "ConsistentRead" not in script.requests[0][2]  # eventually consistent unless asked, as boto3


def test_get_item_endpoint_from_the_environment_service_specific_first(
    table: DynamoDBTable, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    script.answers += [ok({}), ok({})]

    table.get_item(Key={"order_id": "o-1"})
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000")
    table.get_item(Key={"order_id": "o-1"})

    assert [url for url, _, _ in script.requests] == ["http://127.0.0.1:5000", "http://127.0.0.1:6000"]


def test_get_item_signs_with_the_functions_session_token(
    table: DynamoDBTable, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAFUNCTION")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-of-the-role")
    script.answers.append(ok({}))

    table.get_item(Key={"order_id": "o-1"})

    headers = script.requests[0][1]
    assert headers["X-Amz-Security-Token"] == "token-of-the-role"
    assert "Credential=ASIAFUNCTION/" in headers["Authorization"]
    assert "x-amz-security-token" in headers["Authorization"]  # signed, as botocore signs it


def test_get_item_throttled_then_answered_retries_with_backoff(
    table: DynamoDBTable, script: Script, sleeps: list[float]
) -> None:
    script.answers += [
        error(400, "ProvisionedThroughputExceededException"),
        error(503, "ServiceUnavailable"),
        ok({"Item": {"order_id": {"S": "o-1"}}}),
    ]

    assert table.get_item(Key={"order_id": "o-1"}) == {"Item": {"order_id": "o-1"}}
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 0.05  # throttling 1 s base, else 25 ms (x 2^n)


def test_get_item_throttled_four_times_raises_client_error_with_the_code(
    table: DynamoDBTable, script: Script, sleeps: list[float]
) -> None:
    script.answers += [error(400, "ThrottlingException", "Rate exceeded")] * 4

    with pytest.raises(ClientError) as raised:
        table.get_item(Key={"order_id": "o-1"})

    assert raised.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.operation_name == "GetItem"
    assert len(script.requests) == 4 and len(sleeps) == 3


def test_get_item_max_attempts_from_the_environment(
    table: DynamoDBTable, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    script.answers += [error(500, "InternalServerError")] * 2

    with pytest.raises(ClientError, match="InternalServerError"):
        table.get_item(Key={"order_id": "o-1"})
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "AccessDeniedException", "ValidationException"]
)
def test_get_item_permanent_error_raises_at_once(table: DynamoDBTable, script: Script, code: str) -> None:
    script.answers.append(error(400, code, "nope"))

    with pytest.raises(ClientError) as raised:
        table.get_item(Key={"order_id": "o-1"})

    assert raised.value.response["Error"]["Code"] == code
    assert len(script.requests) == 1


def test_get_item_body_not_matching_its_crc32_is_read_again(table: DynamoDBTable, script: Script) -> None:
    script.answers += [
        ok({"Item": {"order_id": {"S": "o-1"}}}, crc=1),
        ok({"Item": {"order_id": {"S": "o-1"}}}),
    ]

    assert table.get_item(Key={"order_id": "o-1"}) == {"Item": {"order_id": "o-1"}}
    assert len(script.requests) == 2


def test_get_item_connection_lost_retries_then_raises_endpoint_connection_error(
    table: DynamoDBTable, script: Script
) -> None:
    script.answers += [ConnectionResetError("reset"), ok({})]
    assert table.get_item(Key={"order_id": "o-1"}) == {}

    script.answers += [ConnectionRefusedError("refused")] * 4
    with pytest.raises(EndpointConnectionError):
        table.get_item(Key={"order_id": "o-1"})


def test_table_other_operations_are_boto3_tables(table: DynamoDBTable) -> None:
    boto3_table = mock.Mock()
    table._boto3_table = boto3_table

    table.put_item(Item={"order_id": "o-1"}, ConditionExpression="attribute_not_exists(order_id)")

    boto3_table.put_item.assert_called_once_with(
        Item={"order_id": "o-1"}, ConditionExpression="attribute_not_exists(order_id)"
    )
    assert table.meta is boto3_table.meta


def test_get_item_behind_a_proxy_is_boto3s(
    table: DynamoDBTable, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    boto3_table = mock.Mock()
    boto3_table.get_item.return_value = {"Item": {"order_id": "o-1"}}
    table._boto3_table = boto3_table

    assert table.get_item(Key={"order_id": "o-1"}, ConsistentRead=True) == {"Item": {"order_id": "o-1"}}
    boto3_table.get_item.assert_called_once_with(Key={"order_id": "o-1"}, ConsistentRead=True)
    assert script.requests == []
