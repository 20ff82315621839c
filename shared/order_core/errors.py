"""Exceptions shared across the layer.

Every exception that crosses a layer lives here: a handler maps these to responses, SQS batch failures or
workflow errors, and nowhere else. (A module may keep a private exception that never leaves it, such as
``archives.ArchiveStopped``.) Their class names are an API: Step Functions matches them in the state
machine's Retry/Catch by the Lambda ``errorType``, which is the exception's class name;
``tests/unit/test_error_contract.py`` checks both sides agree.
"""

from __future__ import annotations

import copy
from typing import Any, Self


class GatewayError(Exception):
    """Base of every exception the gateway raises on purpose."""


# --- upstream (Planet) -------------------------------------------------------------------------------------


class UpstreamError(GatewayError):
    """Planet answered with an error or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    def restated(self, message: str) -> Self:
        """The same error (same class, status, Retry-After, ...) with another message, e.g. one naming the
        file it happened to. Rebuilding it with ``type(error)(message, status=...)`` breaks for subclasses
        whose constructors take other arguments."""
        clone = copy.copy(self)
        clone.args = (message,)
        return clone


class UpstreamClientError(UpstreamError):
    """A 4xx other than 429: the request itself is wrong; retrying cannot help."""


class UpstreamNotFound(UpstreamClientError):
    """404 from Planet."""


class UpstreamConflict(UpstreamClientError):
    """409 from Planet (for example an order that is no longer cancellable)."""


class UpstreamAuthError(UpstreamClientError):
    """401/403 from Planet: the gateway's key is wrong or lacks permission."""


class UpstreamRateLimited(UpstreamError):
    """429 from Planet; ``retry_after`` is the server's Retry-After in seconds when it sent one.

    ``deferred`` is True when the request was never sent: the deployment's pace (services/pacing.py) had no
    slot for it soon enough, which the caller waits out exactly like a 429, knowing Planet saw nothing.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, body: str = "", deferred: bool = False
    ) -> None:
        super().__init__(message, status=429, body=body)
        self.retry_after = retry_after
        self.deferred = deferred


class UpstreamUnavailable(UpstreamError):
    """5xx, timeout or connection failure: transient, worth retrying later.

    ``ambiguous`` is True when the request may have reached Planet (a POST whose answer was lost), so the
    caller must reconcile before sending it again.
    """

    def __init__(
        self, message: str, *, status: int | None = None, body: str = "", ambiguous: bool = False
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.ambiguous = ambiguous


#: Transient faults the workflow retries by name with backoff (statemachine/order_workflow.asl.json,
#: LandResults). Step Functions matches the exact class name, not a base class: a subclass of one of these
#: would not be retried, and tests/unit/test_error_contract.py refuses one.
RETRIED_BY_WORKFLOW: tuple[type[UpstreamError], ...] = (UpstreamUnavailable, UpstreamRateLimited)


class PacingUnavailable(GatewayError):
    """The deployment's pace store (adapters/pace_store.py) could not be used. Never leaves the Planet client
    or the downloader: they send unpaced rather than hold an order back for a fault of the pacing itself."""


class DownloadRefused(UpstreamError):
    """A result URL (or one of its redirect hops) is not one the gateway may fetch."""


class LinkExpired(UpstreamError):
    """Planet refused a result link (401/403/410): refresh it by GETting the order again."""


class UnusableUpstreamOrder(UpstreamError):
    """Planet keeps answering polls with an order the gateway cannot read: the order fails with this hint."""


class ResultVerificationFailed(GatewayError):
    """A landed file's size or digests never matched the manifest: the order must not report success."""


# --- the gateway's own API ---------------------------------------------------------------------------------


class OrderNotFound(GatewayError):
    """No such order for this tenant (another tenant's order is reported the same way)."""


class InvalidDownloadToken(GatewayError):
    """A download token is malformed, forged or expired."""


class Unauthorized(GatewayError):
    """No key, a malformed header, an unknown or a revoked key. The message never contains the key."""


NOT_CANCELLABLE = "Order not in a cancellable state"


class NotCancellable(GatewayError):
    """Planet's 409: only queued orders can be cancelled."""

    def __init__(self) -> None:
        super().__init__(NOT_CANCELLABLE)


class PlanetBusy(GatewayError):
    """Planet rate limited or failed a call made on the client's behalf: the client should retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeyReused(GatewayError):
    """422: the key was used before with a different request body."""


class IdempotencyKeyInFlight(GatewayError):
    """409: the first request with this key has not finished yet."""


class InvalidIdempotencyKey(GatewayError):
    """400: empty or longer than 255 characters."""


class InvalidBody(GatewayError):
    """The body is not JSON we accept; ``body`` is Planet's 400 body saying why."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


class BodyTooLarge(GatewayError):
    """413: a body over ``MAX_ORDER_BYTES``, as sent or as it would be stored."""

    def __init__(self, size: int, what: str = "Request body") -> None:
        from order_core.models.planet import MAX_ORDER_BYTES

        super().__init__(f"{what} is {size} bytes; the limit is {MAX_ORDER_BYTES} bytes")


# --- intake (SQS) ------------------------------------------------------------------------------------------


class RetryLater(GatewayError):
    """The message must come back after ``seconds`` (Planet busy or rate limiting us)."""

    def __init__(self, seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class MessageRefused(GatewayError):
    """An intake message that cannot be attributed to an order of a valid tenant: it goes to the DLQ.

    ``code`` is the metric's ``reason`` dimension (a few fixed values); the message is the human reason, put
    on the dead-letter message and in the log. Neither ever holds the message's body.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
