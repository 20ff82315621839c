"""Download links of landed results: signed, expiring tokens that name exactly one object of one tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from order_core.errors import InvalidDownloadToken

_ALGORITHM = "HS256"
_TOKEN_TYPE = "download-landed-result"  # noqa: S105 - a claim value, not a secret


@dataclass(frozen=True)
class DownloadClaims:
    order_id: str
    tenant: str
    key: str
    filename: str


class DownloadLinks:
    def __init__(self, signing_key: str, ttl_seconds: int = 3600) -> None:
        self._key = signing_key
        self._ttl = ttl_seconds

    def issue(self, claims: DownloadClaims, *, now: datetime | None = None) -> tuple[str, datetime]:
        """A token for one object and the moment it expires."""
        expires = (now or datetime.now(UTC)) + timedelta(seconds=self._ttl)
        payload: dict[str, Any] = {
            "typ": _TOKEN_TYPE,
            "sub": claims.order_id,
            "ten": claims.tenant,
            "key": claims.key,
            "fn": claims.filename,
            "exp": expires,
        }
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM), expires

    def verify(self, token: str) -> DownloadClaims:
        try:
            payload = jwt.decode(token, self._key, algorithms=[_ALGORITHM], options={"require": ["exp"]})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidDownloadToken("download token expired; GET the order again for fresh links") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidDownloadToken("invalid download token") from exc
        if payload.get("typ") != _TOKEN_TYPE:
            raise InvalidDownloadToken("invalid download token")
        return DownloadClaims(payload["sub"], payload["ten"], payload["key"], payload["fn"])
