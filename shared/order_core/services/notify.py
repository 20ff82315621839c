"""A tenant's webhook notifications: the gateway calls them itself, signed, with its own ids and links.

Planet never sees ``notifications`` (services/submit.py strips it). When an order ends, Finalize enqueues one
delivery per order (``per_order: true``) or one per landed result file (Planet's default: one call per
delivered item); NotifyFunction posts each to the tenant's URL through the same SSRF guard as downloads,
signed with the tenant's secret:

    X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

A failed call is retried on the schedule of :func:`retry_delays` (capped exponential backoff spanning about
a day), then the message goes to the dead-letter queue, whose depth raises an alarm.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from order_core.errors import RetryLater
from order_core.models.order import OrderRecord, Phase
from order_core.models.planet import OrderState
from order_core.observability import logger, metrics
from order_core.ports import OrderStore
from order_core.services.links import DownloadLinks
from order_core.services.orders import order_view

SIGNATURE_HEADER = "X-Gateway-Signature"
DELIVERY_HEADER = "X-Gateway-Delivery"
EVENT_HEADER = "X-Gateway-Event"
#: A signature older than this is refused by :func:`verify_signature` (replay protection).
DEFAULT_TOLERANCE_SECONDS = 300
_DELIVERY_NAMESPACE = uuid.UUID("5d0f7a52-8f0e-4a44-9b53-2f3f5a3c9e01")
MANIFEST = "manifest.json"


# --- signing -----------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` seconds old.

    What a receiver does (README "Webhook notifications" has the same code without this package).
    """
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        received = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, received)


# --- what is delivered -------------------------------------------------------------------------------------


class WebhookMessage(BaseModel):
    """One queued notification: a webhook call (``order``, ``item``) or an ``email``. Ids only: the URL,
    secret, address and body are read when it is sent."""

    order_id: str
    tenant: str
    kind: Literal["order", "item", "email"] = "order"
    #: The landed file's path (as in the order's results) for an ``item`` call.
    path: str | None = None

    @property
    def delivery_id(self) -> str:
        """Stable across retries and a repeated enqueue: receivers deduplicate on it."""
        return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{self.order_id}/{self.kind}/{self.path or ''}"))


def webhook_of(record: OrderRecord) -> dict[str, Any] | None:
    """The order's ``notifications.webhook`` as the client sent it, or None."""
    notifications = record.request.get("notifications") or {}
    webhook = notifications.get("webhook") if isinstance(notifications, dict) else None
    return webhook if isinstance(webhook, dict) and webhook.get("url") else None


def wants_email(record: OrderRecord) -> bool:
    notifications = record.request.get("notifications") or {}
    return isinstance(notifications, dict) and notifications.get("email") is True


#: Planet emails when an order reaches one of these states (not on cancel).
EMAIL_STATES = frozenset({OrderState.success, OrderState.partial, OrderState.failed})


def messages_for(record: OrderRecord) -> list[WebhookMessage]:
    """The notifications an ended order owes its tenant: webhook calls, then the email if asked for.

    ``per_order: true``: one call. Otherwise one per landed result file (manifest.json not counted), as
    Planet calls once per delivered item; an order with no landed file (failed, cancelled, or delivered by
    Planet to a cloud destination) still gets one call, for the order.
    """
    base = {"order_id": record.order_id, "tenant": record.tenant}
    email = (
        [WebhookMessage(**base, kind="email")] if wants_email(record) and record.state in EMAIL_STATES else []
    )
    webhook = webhook_of(record)
    if webhook is None:
        return email
    files = [item.path for item in record.results if item.path != MANIFEST]
    if webhook.get("per_order") or not files:
        return [WebhookMessage(**base), *email]
    return [*(WebhookMessage(**base, kind="item", path=path) for path in files), *email]


def email_text(record: OrderRecord, base_url: str) -> tuple[str, str]:
    """Subject and plain-text body of an order's email: our id, state and link, never Planet's."""
    subject = f"Order {record.name!r} {record.state.value}"
    lines = [
        f"Your order {record.name!r} ({record.order_id}) is {record.state.value}: {record.last_message}.",
        "",
        f"Order: {base_url}/orders/v2/{record.order_id}",
        "GET it with your API key for its results and fresh download links.",
    ]
    if record.error_hints:
        lines += ["", "Hints:", *(f"- {hint}" for hint in record.error_hints)]
    return subject[:200], "\n".join(lines)


def webhook_body(record: OrderRecord, message: WebhookMessage, base_url: str, links: DownloadLinks) -> bytes:
    """The order as the gateway's GET shows it: our id, our ``_links`` (fresh download links), never
    Planet's id or tokens. An ``item`` call lists only that item in ``_links.results``."""
    view = order_view(record, base_url, links)
    if message.kind == "item":
        wanted = f"{record.order_id}/{message.path}"
        results = view.get("_links", {}).get("results") or []
        view["_links"]["results"] = [item for item in results if item.get("name") == wanted]
    return json.dumps(view, separators=(",", ":"), sort_keys=True).encode()


# --- retries -----------------------------------------------------------------------------------------------


def retry_delays(first: int = 60, cap: int = 7200, span: int = 24 * 3600) -> list[int]:
    """Seconds to wait before each retry: doubling from ``first``, capped, until they add up to ``span``."""
    delays: list[int] = []
    wait = first
    while sum(delays) < span:
        delays.append(wait)
        wait = min(wait * 2, cap)
    return delays


#: Receives of a message before SQS moves it to the dead-letter queue (template: maxReceiveCount).
MAX_RECEIVES = len(retry_delays()) + 1


class WebhookRefused(Exception):
    """The target may never be called (scheme, address): retrying cannot help."""


class WebhookFailed(Exception):
    """The call did not get a 2xx answer (or no answer): retried later."""


# --- ports -----------------------------------------------------------------------------------------------


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status; raise WebhookRefused for a target the guard refuses, WebhookFailed
        for a connection failure or timeout."""
        ...


class WebhookSecrets(Protocol):
    def secret_for(self, tenant: str) -> str | None: ...

    def email_for(self, tenant: str) -> str | None: ...


class EmailSender(Protocol):
    def send(self, to: str, subject: str, text: str) -> None:
        """Send one email; raise WebhookFailed when it could not be sent now."""
        ...


class NotifyService:
    def __init__(
        self,
        repo: OrderStore,
        sender: WebhookSender,
        secrets: WebhookSecrets,
        links: Callable[[], DownloadLinks],
        base_url: str,
        *,
        delays: list[int] | None = None,
        clock: Callable[[], float] = time.time,
        email: EmailSender | None = None,
    ) -> None:
        self._email = email
        self._repo = repo
        self._sender = sender
        self._secrets = secrets
        self._links = links
        self._base_url = base_url.rstrip("/")
        self._delays = delays or retry_delays()
        self._clock = clock

    def deliver(self, message: WebhookMessage, receive_count: int = 1) -> bool:
        """Call the tenant's webhook (or send the email) once. True when sent, False when there is nothing
        to send.

        Raises RetryLater (with the wait before the next attempt) when the call failed; WebhookRefused
        when the target may never be called.
        """
        record = self._repo.get(message.order_id)
        if message.kind == "email" and record is not None and record.tenant == message.tenant:
            return self._send_email(record, receive_count)
        webhook = webhook_of(record) if record is not None and record.tenant == message.tenant else None
        if record is None or webhook is None:
            logger.warning(
                "webhook message for an order without a webhook", extra={"order_id": message.order_id}
            )
            return False
        if record.phase is not Phase.FINALIZED:  # Finalize queues after its write: not expected
            raise self._retry(receive_count, "the order's outcome is not recorded yet")
        if not self._base_url:
            raise self._retry(receive_count, "the gateway's public base URL (PublicBaseUrl) is not set")
        secret = self._secrets.secret_for(record.tenant)
        if not secret:
            # The tenant has no secret yet: an unsigned call is never sent. The operator creates one with
            # `admin keys webhook-secret --tenant T`; the retries give them time.
            raise self._retry(receive_count, "the tenant has no webhook secret")
        body = webhook_body(record, message, self._base_url, self._links())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "planet-orders-gateway-webhook/1",
            SIGNATURE_HEADER: sign(secret, body, int(self._clock())),
            DELIVERY_HEADER: message.delivery_id,
            EVENT_HEADER: f"order.{message.kind}",
        }
        try:
            status = self._sender.post(str(webhook["url"]), body, headers)
        except WebhookFailed as exc:
            raise self._retry(receive_count, str(exc)) from exc
        if 200 <= status < 300:
            metrics.add_metric(name="WebhooksDelivered", unit="Count", value=1)
            logger.info("webhook delivered", extra={"order_id": record.order_id, "kind": message.kind})
            return True
        raise self._retry(receive_count, f"the webhook answered {status}")

    def _send_email(self, record: OrderRecord, receive_count: int) -> bool:
        """The order's email to the tenant's own address (a tenant setting), never Planet's account."""
        if record.phase is not Phase.FINALIZED:
            raise self._retry(receive_count, "the order's outcome is not recorded yet")
        if self._email is None:
            raise self._retry(receive_count, "email is not configured (NotificationEmailSender)")
        if not self._base_url:
            raise self._retry(receive_count, "the gateway's public base URL (PublicBaseUrl) is not set")
        address = self._secrets.email_for(record.tenant)
        if not address:
            raise self._retry(receive_count, "the tenant has no notification email address")
        subject, text = email_text(record, self._base_url)
        try:
            self._email.send(address, subject, text)
        except WebhookFailed as exc:
            raise self._retry(receive_count, str(exc)) from exc
        metrics.add_metric(name="EmailsSent", unit="Count", value=1)
        logger.info("order email sent", extra={"order_id": record.order_id})
        return True

    def _retry(self, receive_count: int, reason: str) -> RetryLater:
        index = max(0, min(receive_count - 1, len(self._delays) - 1))
        metrics.add_metric(name="WebhookAttemptsFailed", unit="Count", value=1)
        return RetryLater(self._delays[index], reason)


def enqueue_all(queue: Callable[[Iterable[WebhookMessage]], None], record: OrderRecord) -> int:
    """Queue every webhook call the ended order owes; the number queued."""
    messages = messages_for(record)
    if messages:
        queue(messages)
    return len(messages)
