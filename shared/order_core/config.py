"""The one settings model. Nothing else in the project reads ``os.environ``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the functions are configured with, read once per execution environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    orders_table: str = "orders"
    api_keys_table: str = "api-keys"
    idempotency_table: str = "idempotency"
    intake_queue_url: str = ""
    workflow_arn: str = ""
    results_bucket: str = ""
    results_prefix: str = "orders"
    completion_topic_arn: str = ""

    planet_api_url: str = "https://api.planet.com/compute/ops"
    planet_api_key_secret_id: str = ""
    #: Only for local runs and tests; in AWS the key comes from Secrets Manager.
    planet_api_key: str | None = Field(default=None, repr=False)
    download_token_secret_id: str = ""
    download_token_ttl_seconds: int = 3600

    poll_first_wait_seconds: int = Field(default=15, ge=1)
    poll_max_wait_seconds: int = Field(default=300, ge=1)
    poll_deadline_seconds: int = Field(default=3 * 24 * 3600, ge=60)

    submit_max_attempts: int = Field(default=6, ge=1)
    submit_retry_base_seconds: int = Field(default=10, ge=1)

    download_allowed_hosts: str = "api.planet.com,storage.googleapis.com"
    allow_http_downloads: bool = False
    download_chunk_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    #: Time the final function keeps in reserve to save progress before Lambda stops it.
    landing_reserve_seconds: int = Field(default=60, ge=1)

    #: Overrides the public base URL that links are built from (otherwise derived from the request).
    public_base_url: str | None = None

    @property
    def allowed_download_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()
