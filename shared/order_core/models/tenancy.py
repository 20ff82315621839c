"""Tenants and their API keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_tenant(value: str) -> str:
    """Tenant names become part of S3 keys: keep them to a safe, readable alphabet."""
    if not _TENANT.fullmatch(value):
        raise ValueError("tenant names are 1-63 characters of a-z, 0-9, '-' and '_', starting alphanumeric")
    return value


class ApiKeyRecord(BaseModel):
    key_hash: str = Field(description="SHA-256 of the key, hex")
    key_id: str = Field(description="The key's first characters, to name it in listings and revocations")
    tenant: str
    label: str = ""
    created_on: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    revoked: bool = False

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return validate_tenant(value)
