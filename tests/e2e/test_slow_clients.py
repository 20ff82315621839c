"""A client that stops sending is cut off and the server keeps serving others: the local stack's HTTP
front and the fake Planet, each serving in this process with a short read timeout."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from gateway_local.api_front import ApiFront, ApiRoute
from gateway_local.lambda_runtime import Invocation

READ_TIMEOUT = 0.5
# How long the test waits for the server's answer to a stalled request; without a read timeout on the
# server side it would wait forever, and this test fails here.
PATIENCE = 60
PARTIAL_BODY = (
    b"POST /compute/ops/orders/v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"name": "never fin'
)


def _answer(_function: str, _event: Any) -> Invocation:
    return Invocation(json.dumps({"statusCode": 200, "body": json.dumps({"ok": True})}), errored=False)


@pytest.fixture
def front() -> Iterator[ApiFront]:
    route = ApiRoute("ApiFunction", "ANY", "/compute/ops/{proxy+}", api_id="local", stage="v1")
    server = ApiFront([route], _answer, read_timeout=READ_TIMEOUT)
    server.start()
    yield server
    server.stop()


def _everything_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_api_front_client_with_partial_body_gets_408_while_others_are_served(front: ApiFront) -> None:
    base = f"http://127.0.0.1:{front.port}/compute/ops"
    with socket.create_connection(("127.0.0.1", front.port), timeout=PATIENCE) as stalled:
        stalled.sendall(PARTIAL_BODY)
        meanwhile = requests.post(f"{base}/orders/v2", json={"name": "complete"}, timeout=PATIENCE)

        answer = _everything_until_closed(stalled)

    assert meanwhile.status_code == 200
    assert answer.startswith(b"HTTP/1.1 408")
    assert answer.endswith(b'{"message": "Request Timeout"}')
    assert requests.get(f"{base}/stats/orders/v2", timeout=PATIENCE).status_code == 200


def test_api_front_client_with_partial_headers_is_disconnected(front: ApiFront) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=PATIENCE) as stalled:
        stalled.sendall(b"GET /compute/ops/orders/v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz")

        assert _everything_until_closed(stalled) == b""


def test_api_front_payload_over_10_mb_answers_413(front: ApiFront) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=PATIENCE) as client:
        client.sendall(PARTIAL_BODY.replace(b"Content-Length: 100", b"Content-Length: 10485761"))

        answer = _everything_until_closed(client)

    assert answer.startswith(b"HTTP/1.1 413")


def test_fake_planet_client_with_partial_body_is_cut_off_while_others_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from planet_fake import server as fake_server
    from planet_fake.config import FakePlanetConfig

    monkeypatch.setattr(fake_server._RequestHandler, "timeout", READ_TIMEOUT)
    with fake_server.start_in_thread(config=FakePlanetConfig(rate_limits=False)) as planet:
        port = int(planet.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as stalled:
            stalled.sendall(PARTIAL_BODY)
            meanwhile = requests.get(f"{planet.base_url}/stats/orders/v2", timeout=PATIENCE)

            answer = _everything_until_closed(stalled)

    assert meanwhile.status_code in (200, 401)  # answered (the key is not the point here)
    assert not answer.startswith(b"HTTP/1.1 2")
