"""The one settings model. Nothing else in the project reads ``os.environ``.

A plain pydantic model filled from the environment, not ``pydantic-settings``: importing that package costs
about 80 ms of every cold start (benchmarks/RESULTS.md), and these flat fields need none of its sources.
The behaviour is ``BaseSettings``' for such fields: each field is read from the environment variable of the
same name in any case (``ORDERS_TABLE`` → ``orders_table``), strings are coerced to the field's type
("15" → 15, "true" → True), keyword arguments win over the environment, other variables are ignored.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything the functions are configured with, read once per execution environment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        environment = {key.lower(): value for key, value in os.environ.items()}
        fields = type(self).model_fields
        super().__init__(**{**{name: environment[name] for name in fields if name in environment}, **values})

    orders_table: str = "orders"
    api_keys_table: str = "api-keys"
    idempotency_table: str = "idempotency"
    #: Deployment-wide state: Planet request slots per endpoint and the fleet sweep's cursor.
    fleet_table: str = "fleet"
    intake_queue_url: str = ""
    #: Where SubmitFunction puts intake messages it refuses, each with a ``refusal_reason`` attribute.
    intake_dead_letter_queue_url: str = ""
    workflow_arn: str = ""
    results_bucket: str = ""
    results_prefix: str = "orders"
    completion_topic_arn: str = ""

    planet_api_url: str = "https://api.planet.com/compute/ops"
    planet_api_key_secret_id: str = ""
    #: Only for local runs and tests; in AWS the key comes from Secrets Manager.
    planet_api_key: str | None = Field(default=None, repr=False)
    #: Pace every Planet request of the deployment as one (services/pacing.py, docs/decisions.md "Pacing the
    #: fleet"). Off only for tests that must send unpaced.
    planet_pacing: bool = True
    #: The longest a function sleeps for its request slot; a later slot defers the call like a 429.
    planet_pace_max_wait_seconds: float = Field(default=2.0, ge=0, le=60)
    #: The part of Planet's per-key limits the deployment paces itself to (services/pacing.py); the rest
    #: absorbs how late a request can reach Planet after its slot.
    planet_pace_share: float = Field(default=0.8, gt=0, le=1)
    download_token_secret_id: str = ""
    download_token_ttl_seconds: int = 3600

    poll_first_wait_seconds: int = Field(default=15, ge=1)
    poll_max_wait_seconds: int = Field(default=300, ge=1)
    poll_deadline_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    #: Consecutive polls answered with an order we cannot read before the order fails (services/poll.py).
    poll_max_unusable_responses: int = Field(default=5, ge=1)

    # --- following orders (services/tracking.py, services/wake.py) ---
    #: How long a workflow waits for a wake (Planet's webhook, the fleet sweep) before checking on its own.
    watch_seconds: int = Field(default=3600, ge=1)
    #: Seconds between two fleet sweeps (a list by last_modified); a sweep this recent vouches for orders.
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    #: A sweep that finished within this many seconds vouches for every order it could have seen.
    sweep_fresh_seconds: float = Field(default=300.0, gt=0)
    #: The API's public root Planet's per-order webhook calls (…/compute/ops/hooks/planet/...); empty: the
    #: gateway asks Planet for no webhook and follows orders by the sweep and their own checks alone.
    planet_webhook_base_url: str = ""

    # --- Planet's bundles spec, checked on create (services/bundles.py) ---
    #: How long a spec read from Planet is trusted before it is fetched again.
    bundles_spec_ttl_seconds: int = Field(default=3600, ge=1)
    #: After a failed fetch, how long the fallback table is used before Planet is asked again.
    bundles_spec_retry_seconds: int = Field(default=300, ge=1)
    #: Connect and read timeout of that fetch: an order create waits for it at most once per interval.
    bundles_spec_timeout_seconds: float = Field(default=3.0, gt=0)

    submit_max_attempts: int = Field(default=6, ge=1)
    submit_retry_base_seconds: int = Field(default=10, ge=1)

    download_allowed_hosts: str = "api.planet.com,storage.googleapis.com"
    allow_http_downloads: bool = False
    download_chunk_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    #: Time the final function keeps in reserve to save progress before Lambda stops it.
    landing_reserve_seconds: int = Field(default=60, ge=1)

    #: Overrides the public base URL that links are built from (otherwise derived from the request).
    public_base_url: str | None = None

    # --- landing results at scale (docs/decisions.md "Landing results at scale") ---
    #: Planet's download rate per key; 0 turns pacing off (only for a fake Planet without rate limits).
    download_requests_per_second: float = Field(default=5.0, ge=0)
    #: Preferred multipart part size; raised for files that would otherwise need more than 10,000 parts.
    landing_part_bytes: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)
    #: Memory all part and file buffers may hold at once (peak memory does not grow with file size).
    landing_buffer_bytes: int = Field(default=128 * 1024 * 1024, ge=16 * 1024 * 1024)
    #: Files landed at once, and byte ranges fetched and uploaded at once (all files together).
    landing_file_workers: int = Field(default=8, ge=1, le=64)
    landing_part_workers: int = Field(default=8, ge=1, le=64)
    #: Where multipart progress checkpoints live in the results bucket (outside every order's folder).
    landing_state_prefix: str = "_landing-state"

    # --- the reconciler (services/reconcile.py) ---
    #: Orders untouched for less than this are left alone: a submit retry or a new workflow may be moving
    #: them. Longer than a submit retry's longest wait (900 s) plus a function's run.
    reconcile_min_age_seconds: int = Field(default=1800, ge=0)

    # --- tenants' webhooks (services/notify.py) ---
    #: Where Finalize queues webhook calls; empty: no webhook is called (the template always sets it).
    webhook_queue_url: str = ""
    webhook_dead_letter_queue_url: str = ""
    #: The API's public root (…/compute/ops) the links in webhook bodies are built from.
    webhook_base_url: str = ""
    #: The verified SES sender of order emails (``email: true``); empty: emails are not sent (retried).
    notification_email_sender: str = ""
    #: Connect and read timeout of one webhook call.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def allowed_download_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once."""
    return Settings()
