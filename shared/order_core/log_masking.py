"""Masking secrets in log lines: the functions' logger (``order_core.observability``) and the local stack's
own logs use the same rules.

Imported by the local stack before the functions' environment exists, so it creates no logger itself.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "<redacted>"
_SECRET_FIELDS = (
    "aws_secret_access_key",
    "secret_access_key",
    "sas_token",
    "credentials",
    "customer_secret_key",
    "client_secret",
    "private_key",
    "password",
    "authorization",
    "x-api-key",
)
_QUERY_VALUE = r"[^&\s\"'<>#\\]+"  # up to the next &, quote, space or backslash
# (pattern, replacement): what gives a secret away in text, and what is left of it.
_SECRET_PATTERNS = [
    # Query parameters of signed links: our and Planet's download tokens, S3 presigned URLs (SigV4 and
    # SigV2), Azure SAS signatures, OAuth tokens and API keys in a query string. Also SigV4 Authorization
    # headers (Credential=..., Signature=...).
    (
        re.compile(
            r"(?i)\b(token|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token|credential|"
            r"awsaccesskeyid|access_token|id_token|api_key|apikey|password)=" + _QUERY_VALUE
        ),
        rf"\1={MASK}",
    ),
    # Authorization header values: Planet's "api-key <key>", Basic and Bearer credentials.
    (re.compile(r"(?i)\b(api-key|basic|bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{MASK}"),
    # JWTs wherever they are (our download tokens, Planet's).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Planet API keys, the gateway's own keys (their public id, the first 10 characters, is kept) and AWS
    # access key ids.
    (re.compile(r"\bPLAK[A-Za-z0-9_-]+"), f"PLAK{MASK}"),
    (re.compile(r"\b(pgw_[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+"), rf"\1{MASK}"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), rf"\1{MASK}"),
    # Secret fields of a delivery block (or anything else) and headers, as JSON (escaped too, when the JSON
    # is itself inside a JSON string) or as a Python repr: the quoted value goes.
    (
        re.compile(
            r"(?i)(?P<key>\\?[\"']?(?:" + "|".join(_SECRET_FIELDS) + r")\\?[\"']?\s*[:=]\s*)"
            r"(?P<quote>\\?[\"'])(?:.*?)(?P=quote)"
        ),
        rf"\g<key>\g<quote>{MASK}\g<quote>",
    ),
]
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def hide_in_logs(secret: str) -> None:
    """Mask this exact value (a key read from Secrets Manager) in every log line from now on."""
    global _known_pattern
    if len(secret) < 8 or secret in _known_secrets:  # a short value would mask ordinary words
        return
    with _known_lock:
        _known_secrets.add(secret)
        alternatives = sorted(_known_secrets, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(value) for value in alternatives))


def mask_secrets(text: str) -> str:
    """``text`` with every secret it shows replaced by ``<redacted>``."""
    known = _known_pattern
    if known is not None:
        text = known.sub(MASK, text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class MaskingFormatter(logging.Formatter):
    """A plain-text formatter that masks secrets, for the local stack's own logs (moto, werkzeug, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))
