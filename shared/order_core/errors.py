"""Exceptions shared across the layer.

Their class names are an API: Step Functions matches them in the state machine's Retry/Catch by the Lambda
``errorType``, which is the exception's class name. ``tests/statemachine`` checks both sides agree.
"""

from __future__ import annotations

import copy
from typing import Self


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
    """429 from Planet; ``retry_after`` is the server's Retry-After in seconds when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, body: str = "") -> None:
        super().__init__(message, status=429, body=body)
        self.retry_after = retry_after


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


class DownloadRefused(UpstreamError):
    """A result URL (or one of its redirect hops) is not one the gateway may fetch."""


class LinkExpired(UpstreamError):
    """Planet refused a result link (401/403/410): refresh it by GETting the order again."""


class ResultVerificationFailed(GatewayError):
    """A landed file's size or digests never matched the manifest: the order must not report success."""


# --- the gateway's own API ---------------------------------------------------------------------------------


class OrderNotFound(GatewayError):
    """No such order for this tenant (another tenant's order is reported the same way)."""


class InvalidDownloadToken(GatewayError):
    """A download token is malformed, forged or expired."""
