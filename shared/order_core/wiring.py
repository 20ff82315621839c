"""Builds the services from settings, once per execution environment and only when first needed.

Handlers call these; tests pass their own collaborators to the handlers instead.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from order_core.config import Settings, get_settings

if TYPE_CHECKING:
    from order_core.adapters.messaging import IntakeQueue
    from order_core.adapters.orders_repo import OrdersRepository
    from order_core.adapters.planet_client import PlanetClient
    from order_core.adapters.storage import ResultsStore
    from order_core.adapters.sweep_cursor import SweepCursorStore
    from order_core.adapters.webhooks import WebhookQueue, WebhookSecretsRepository
    from order_core.services.auth import ApiKeyService
    from order_core.services.bundles import BundlesSpecSource
    from order_core.services.finalize import FinalizeService
    from order_core.services.landing import LandingService
    from order_core.services.links import DownloadLinks
    from order_core.services.notify import NotifyService
    from order_core.services.orders import OrderService
    from order_core.services.pacing import Pacer
    from order_core.services.poll import PollService
    from order_core.services.reconcile import ReconcileService
    from order_core.services.submit import SubmitService
    from order_core.services.tracking import TrackingPolicy
    from order_core.services.wake import FleetSweep, PlanetHooks, WakeService


def planet_api_key(settings: Settings) -> str:
    from order_core.log_masking import hide_in_logs

    if settings.planet_api_key:
        key = settings.planet_api_key
    else:
        from order_core.adapters.secrets import get_secret

        key = get_secret(settings.planet_api_key_secret_id)
    hide_in_logs(key)
    return key


@lru_cache(maxsize=1)
def orders_repo() -> OrdersRepository:
    from order_core.adapters.orders_repo import OrdersRepository

    return OrdersRepository(get_settings().orders_table)


@lru_cache(maxsize=1)
def api_key_service() -> ApiKeyService:
    from order_core.adapters.api_keys_repo import ApiKeysRepository
    from order_core.services.auth import ApiKeyService

    return ApiKeyService(ApiKeysRepository(get_settings().api_keys_table))


@lru_cache(maxsize=1)
def planet_client() -> PlanetClient:
    from order_core.adapters.planet_client import PlanetClient

    settings = get_settings()
    return PlanetClient(
        settings.planet_api_url,
        planet_api_key(settings),
        pacer=planet_pacer(),
        pace_max_wait_seconds=settings.planet_pace_max_wait_seconds,
    )


@lru_cache(maxsize=1)
def planet_pacer() -> Pacer | None:
    """The deployment's pace for requests with its Planet API key (slots in the fleet table, shared by
    every function), or None when pacing is off."""
    settings = get_settings()
    if not settings.planet_pacing:
        return None
    from order_core.adapters.pace_store import DynamoPaceStore
    from order_core.adapters.planet_client import key_fingerprint
    from order_core.services.pacing import Pacer

    return Pacer(
        DynamoPaceStore(settings.fleet_table),
        scope=key_fingerprint(planet_api_key(settings)),
        share=settings.planet_pace_share,
    )


@lru_cache(maxsize=1)
def order_service() -> OrderService:
    from order_core.adapters.messaging import IntakeQueue, OrderWorkflow
    from order_core.services.orders import OrderService

    settings = get_settings()
    return OrderService(
        orders_repo(),
        IntakeQueue(settings.intake_queue_url),
        OrderWorkflow(settings.workflow_arn),
        planet_client,
        wake=lambda order_id: wake_service().wake(order_id, by="cancel"),
    )


@lru_cache(maxsize=1)
def bundles_spec() -> BundlesSpecSource:
    from order_core.services.bundles import BundlesSpecSource

    settings = get_settings()
    timeout = (settings.bundles_spec_timeout_seconds, settings.bundles_spec_timeout_seconds)
    return BundlesSpecSource(
        lambda: planet_client().get_bundles_spec(timeout=timeout),
        ttl_seconds=settings.bundles_spec_ttl_seconds,
        retry_seconds=settings.bundles_spec_retry_seconds,
    )


@lru_cache(maxsize=1)
def download_links() -> DownloadLinks:
    from order_core.adapters.secrets import get_secret
    from order_core.log_masking import hide_in_logs
    from order_core.services.links import DownloadLinks

    settings = get_settings()
    signing_key = get_secret(settings.download_token_secret_id)
    hide_in_logs(signing_key)
    return DownloadLinks(signing_key, settings.download_token_ttl_seconds)


@lru_cache(maxsize=1)
def results_store() -> ResultsStore:
    from order_core.adapters.storage import ResultsStore

    return ResultsStore(get_settings().results_bucket)


@lru_cache(maxsize=1)
def intake_queue() -> IntakeQueue:
    from order_core.adapters.messaging import IntakeQueue

    return IntakeQueue(get_settings().intake_queue_url)


@lru_cache(maxsize=1)
def submit_service() -> SubmitService:
    from order_core.adapters.messaging import IntakeDeadLetters, OrderWorkflow
    from order_core.services.submit import SubmitService

    settings = get_settings()
    return SubmitService(
        orders_repo(),
        planet_client(),
        OrderWorkflow(settings.workflow_arn),
        dead_letters=IntakeDeadLetters(settings.intake_dead_letter_queue_url),
        bundles=bundles_spec(),
        max_attempts=settings.submit_max_attempts,
        planet_webhook=planet_webhook_of if settings.planet_webhook_base_url else None,
    )


def planet_webhook_of(order_id: str) -> dict[str, object]:
    """The ``notifications`` asking Planet to call our hook of ``order_id`` (services/wake.py)."""
    return planet_hooks().webhook(get_settings().planet_webhook_base_url, order_id)


@lru_cache(maxsize=1)
def planet_hooks() -> PlanetHooks:
    """Planet's per-order webhook: tokens keyed by the download-token secret under their own label."""
    from order_core.adapters.secrets import get_secret
    from order_core.log_masking import hide_in_logs
    from order_core.services.wake import PlanetHooks

    secret = get_secret(get_settings().download_token_secret_id)
    hide_in_logs(secret)
    return PlanetHooks(secret, wake_service())


@lru_cache(maxsize=1)
def poll_service() -> PollService:
    from order_core.services.poll import PollService, history_safe_policy

    settings = get_settings()
    policy = history_safe_policy(
        settings.poll_first_wait_seconds, settings.poll_max_wait_seconds, settings.poll_deadline_seconds
    )
    return PollService(
        orders_repo(),
        planet_client(),
        policy,
        timedelta(seconds=settings.poll_deadline_seconds),
        max_unusable=settings.poll_max_unusable_responses,
        tracking=tracking_policy(),
        last_sweep=sweep_cursors(),
    )


def tracking_policy() -> TrackingPolicy:
    from order_core.services.tracking import TrackingPolicy

    settings = get_settings()
    return TrackingPolicy(
        sweep_interval_seconds=settings.sweep_interval_seconds,
        watch_seconds=settings.watch_seconds,
        sweep_fresh_seconds=max(settings.sweep_fresh_seconds, settings.sweep_interval_seconds),
    )


@lru_cache(maxsize=1)
def sweep_cursors() -> SweepCursorStore:
    from order_core.adapters.sweep_cursor import SweepCursorStore

    return SweepCursorStore(get_settings().fleet_table)


@lru_cache(maxsize=1)
def wake_service() -> WakeService:
    from order_core.adapters.states import TaskTokens
    from order_core.services.wake import WakeService

    return WakeService(orders_repo(), TaskTokens())


@lru_cache(maxsize=1)
def fleet_sweep() -> FleetSweep:
    from order_core.services.wake import FleetSweep

    return FleetSweep(orders_repo(), planet_client(), sweep_cursors(), wake_service(), tracking_policy())


@lru_cache(maxsize=1)
def landing_service() -> LandingService:
    from order_core.adapters.downloads import ResultDownloader
    from order_core.adapters.storage import ResultsStore
    from order_core.services.landing import LandingService, LandingTuning
    from order_core.services.transfer import TransferLimits

    settings = get_settings()
    tuning = LandingTuning(
        file_workers=settings.landing_file_workers,
        part_workers=settings.landing_part_workers,
        transfer=TransferLimits(
            part_bytes=settings.landing_part_bytes, buffer_bytes=settings.landing_buffer_bytes
        ),
        state_prefix=settings.landing_state_prefix,
    )
    connections = settings.landing_file_workers + settings.landing_part_workers
    downloader = ResultDownloader(
        settings.allowed_download_hosts,
        allow_http=settings.allow_http_downloads,
        chunk_bytes=settings.download_chunk_bytes,
        per_second=settings.download_requests_per_second,
        pool_size=connections,
        # Planet's download links take slots of the whole deployment's pace when pacing is on.
        pacer=planet_pacer() if settings.download_requests_per_second > 0 else None,
    )
    # Its own S3 client: enough connections for every worker at once.
    store = ResultsStore(settings.results_bucket, max_connections=connections + 4)
    return LandingService(orders_repo(), planet_client(), downloader, store, settings.results_prefix, tuning)


@lru_cache(maxsize=1)
def finalize_service() -> FinalizeService:
    from order_core.adapters.messaging import CompletionEvents
    from order_core.services.finalize import FinalizeService

    settings = get_settings()
    return FinalizeService(
        orders_repo(),
        CompletionEvents(settings.completion_topic_arn),
        settings.results_bucket,
        webhooks=webhook_queue().send if settings.webhook_queue_url else None,
    )


@lru_cache(maxsize=1)
def webhook_queue() -> WebhookQueue:
    from order_core.adapters.webhooks import WebhookQueue

    settings = get_settings()
    return WebhookQueue(settings.webhook_queue_url, settings.webhook_dead_letter_queue_url)


@lru_cache(maxsize=1)
def webhook_secrets() -> WebhookSecretsRepository:
    from order_core.adapters.webhooks import WebhookSecretsRepository

    return WebhookSecretsRepository(get_settings().api_keys_table)


@lru_cache(maxsize=1)
def notify_service() -> NotifyService:
    from order_core.adapters.webhooks import GuardedWebhookSender, SesEmailSender
    from order_core.services.notify import NotifyService

    settings = get_settings()
    sender = GuardedWebhookSender(
        local_mode=settings.allow_http_downloads, timeout=settings.webhook_timeout_seconds
    )
    email = SesEmailSender(settings.notification_email_sender) if settings.notification_email_sender else None
    return NotifyService(
        orders_repo(), sender, webhook_secrets(), download_links, settings.webhook_base_url, email=email
    )


@lru_cache(maxsize=1)
def reconcile_service() -> ReconcileService:
    from order_core.adapters.messaging import WorkflowExecutions
    from order_core.services.reconcile import ReconcileService

    settings = get_settings()
    return ReconcileService(
        orders_repo(),
        WorkflowExecutions(settings.workflow_arn),
        intake_queue(),
        min_age=timedelta(seconds=settings.reconcile_min_age_seconds),
        backfill=orders_repo(),
    )


def reset() -> None:
    """Forget every built collaborator and the settings (tests change the environment between cases)."""
    for factory in (
        orders_repo,
        api_key_service,
        planet_client,
        planet_pacer,
        order_service,
        bundles_spec,
        download_links,
        results_store,
        intake_queue,
        submit_service,
        poll_service,
        landing_service,
        finalize_service,
        reconcile_service,
        sweep_cursors,
        wake_service,
        fleet_sweep,
        planet_hooks,
        webhook_queue,
        webhook_secrets,
        notify_service,
        get_settings,
    ):
        factory.cache_clear()
