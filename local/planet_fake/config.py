"""Configuration of the fake Planet Orders API server."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "FAKE_PLANET_"

Outcome = Literal["success", "partial", "failed"]


class FakePlanetConfig(BaseModel):
    """Every knob of the fake. Immutable: runtime changes swap in a new instance (see `updated`).

    Timeline, file size and outcome are captured by each order when it is created, so changing them
    affects later orders only; the other fields apply to the next request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    queued_seconds: float = Field(default=2.0, ge=0)
    running_seconds: float = Field(default=3.0, ge=0)
    file_size: int = Field(default=262144, ge=0, description="bytes of each imagery asset")
    link_ttl_seconds: float = Field(default=3600, ge=0, description="lifetime of download links")
    rate_limits: bool = True
    webhooks: bool = Field(default=True, description="call orders' notifications.webhook URLs (webhooks.py)")
    page_size: int = Field(default=20, ge=1, description="list page size when the request has none")
    api_keys: tuple[str, ...] = Field(default=(), description="allow-list; empty accepts any key")
    token_secret: str = Field(default="planet-fake-secret", min_length=1)
    outcome: Outcome | None = Field(default=None, description="forced outcome of every new order")
    storage_base_url: str | None = Field(
        default=None, description="where download redirects point; default: the host the client used"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("outcome", "storage_base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("storage_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FakePlanetConfig:
        """Build from `FAKE_PLANET_<FIELD>` variables, e.g. FAKE_PLANET_QUEUED_SECONDS=0.5."""
        env = os.environ if environ is None else environ
        values = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        return cls.model_validate(values)

    def updated(self, changes: dict[str, Any]) -> FakePlanetConfig:
        """A validated copy with `changes` applied (model_copy would skip validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})
