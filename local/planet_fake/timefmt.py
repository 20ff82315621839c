"""Timestamps the way the Orders API writes them: RFC 3339, UTC, millisecond precision, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

# What Planet writes in expires_at when a result has no download link (cloud delivery, hosting).
NO_EXPIRY = "0001-01-01T00:00:00.000Z"


def utcnow_ms() -> datetime:
    """Now, truncated to milliseconds so a stored time equals its rendered form (filters compare both)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 instant; a value without offset is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
