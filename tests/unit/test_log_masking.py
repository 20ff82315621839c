"""No secret reaches a log line: the functions' Powertools logger and the local stack's plain logs mask
download tokens, signed storage URLs, API keys and delivery credentials wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from order_core.log_masking import MaskingFormatter, hide_in_logs, mask_secrets
from order_core.observability import logger

TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcmRlciJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
PRESIGNED = (
    "http://127.0.0.1:5000/bucket/orders/default/o/file.tif?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T000000Z"
    "&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzEJr0session"
    "&X-Amz-Signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)
SECRETS = [
    TOKEN,
    "AKIAIOSFODNN7EXAMPLE",
    "FwoGZXIvYXdzEJr0session",
    "9f86d081884c7d659a2feaa0c55ad015",
    "PLAK0123456789abcdef0123456789ab",
    "pgw_Abc123secretpartofthekey",
    "dXNlcjpwYXNzd29yZA",
    "SK/very+secret",
    "planet-token-3a4b5c6d",
]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the functions' logger writes, for one test."""
    captured = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(captured)  # type: ignore[attr-defined]
    try:
        yield captured
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def test_logger_request_with_token_and_signed_url_logs_neither(log_output: io.StringIO) -> None:
    logger.info(
        f"GET /compute/ops/download/?token={TOKEN} -> 302",
        extra={
            "url": PRESIGNED,
            "headers": {
                "Authorization": "api-key pgw_Abc123secretpartofthekey",
                "X-Basic": "Basic dXNlcjpwYXNzd29yZA==",
            },
            "upstream": "Authorization: api-key PLAK0123456789abcdef0123456789ab",
            "request": json.dumps({"delivery": {"amazon_s3": {"aws_secret_access_key": "SK/very+secret"}}}),
            "planet_link": "https://api.planet.com/compute/ops/download/?token=planet-token-3a4b5c6d",
        },
    )

    output = log_output.getvalue()
    assert [secret for secret in SECRETS if secret in output] == []
    line = json.loads(output)
    assert line["message"] == "GET /compute/ops/download/?token=<redacted> -> 302"
    assert "X-Amz-Signature=<redacted>" in line["url"]
    assert line["headers"]["Authorization"] == "<redacted>"
    assert line["upstream"] == "Authorization: api-key <redacted>"


def test_logger_exception_text_is_masked_too(log_output: io.StringIO) -> None:
    try:
        raise ConnectionError(f"Max retries exceeded with url: /download/?token={TOKEN}")
    except ConnectionError:
        logger.exception("download failed")

    output = log_output.getvalue()
    assert TOKEN not in output
    assert json.loads(output)["exception_name"] == "ConnectionError"


def test_logger_hides_a_secret_value_it_was_told_about(log_output: io.StringIO) -> None:
    hide_in_logs("a-signing-key-without-any-recognisable-shape")

    logger.info("key is a-signing-key-without-any-recognisable-shape")

    assert json.loads(log_output.getvalue())["message"] == "key is <redacted>"


def test_masking_formatter_masks_plain_log_records() -> None:
    record = logging.LogRecord("werkzeug", logging.WARNING, __file__, 1, "GET %s 200", (PRESIGNED,), None)

    line = MaskingFormatter("%(name)s: %(message)s").format(record)

    assert [secret for secret in SECRETS if secret in line] == []
    assert line.startswith(
        "werkzeug: GET http://127.0.0.1:5000/bucket/orders/default/o/file.tif?X-Amz-Algorithm="
    )


@pytest.mark.parametrize(
    "text",
    [
        "use 'Authorization: api-key <key>' or Basic auth with the key as user name",
        "landing files: 8, already landed 0, order 3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10",
        "key pgw_local (an id, not a key)",
        "GET /compute/ops/orders/v2?state=queued&page_size=2 -> 200",
    ],
)
def test_mask_secrets_leaves_ordinary_text_alone(text: str) -> None:
    assert mask_secrets(text) == text
