"""Who is calling: API keys (``Authorization: api-key <key>`` or Basic with the key as user name) → tenant.

Keys are random 192-bit tokens, so a single SHA-256 is enough to store them safely: unlike passwords they
cannot be guessed, and a fast hash keeps every authorization one DynamoDB read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from order_core.adapters.api_keys_repo import ApiKeysRepository
from order_core.errors import Unauthorized as Unauthorized
from order_core.models.tenancy import ApiKeyRecord, validate_tenant

KEY_PREFIX = "pgw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_header(authorization: str | None) -> str:
    """The API key in an Authorization header, in either form Planet accepts."""
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "api-key" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:
            user, _, _password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if user:
            return user
    raise Unauthorized("use 'Authorization: api-key <key>' or Basic auth with the key as user name")


class ApiKeyService:
    def __init__(self, repo: ApiKeysRepository) -> None:
        self._repo = repo

    def create(self, tenant: str, label: str = "", *, key: str | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key for ``tenant``; the key itself is returned once and never stored."""
        validate_tenant(tenant)
        key = key or KEY_PREFIX + secrets.token_urlsafe(24)
        record = ApiKeyRecord(
            key_hash=hash_key(key), key_id=key[: len(KEY_PREFIX) + 6], tenant=tenant, label=label
        )
        self._repo.put(record)
        return key, record

    def all_keys(self) -> list[ApiKeyRecord]:
        return sorted(self._repo.all(), key=lambda r: (r.tenant, r.created_on))

    def revoke(self, key_id: str) -> list[ApiKeyRecord]:
        """Revoke every key whose id is ``key_id``; returns what was revoked."""
        matches = [r for r in self._repo.all() if r.key_id == key_id and not r.revoked]
        for record in matches:
            self._repo.revoke(record.key_hash)
        return matches

    def tenant_for(self, authorization: str | None) -> str:
        record = self._repo.get(hash_key(key_from_header(authorization)))
        if record is None or record.revoked:
            raise Unauthorized("unknown or revoked API key")
        return record.tenant
