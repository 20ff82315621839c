"""Download tokens (the JWT in `location` links) and signed storage URLs (where downloads redirect to)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

# The token_type of a real Orders download token (reference 2.7).
TOKEN_TYPE = "download-asset-stack"
_ALGORITHM = "HS512"


class LinkError(Exception):
    """A download token or storage signature that must be refused; the message is shown to the client."""


class StorageUrlExpired(LinkError):
    """A storage URL whose signature is good but whose expiry has passed."""


@dataclass(frozen=True)
class DownloadClaim:
    order_id: str
    path: str
    expires: int


def _jwt_key(secret: str) -> bytes:
    """HS512 wants a key of at least 64 bytes (RFC 7518 3.2; PyJWT warns otherwise): stretch the secret."""
    return hashlib.sha512(secret.encode()).digest()


def issue_download_token(secret: str, order_id: str, path: str, expires: int) -> str:
    claims = {"sub": order_id, "path": path, "token_type": TOKEN_TYPE, "exp": expires}
    return jwt.encode(claims, _jwt_key(secret), algorithm=_ALGORITHM)


def read_download_token(secret: str, token: str) -> DownloadClaim:
    """Raises LinkError when the token is expired, forged or malformed."""
    try:
        claims = jwt.decode(
            token, _jwt_key(secret), algorithms=[_ALGORITHM], options={"require": ["exp", "sub", "path"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise LinkError("Download link has expired: GET the order again for a fresh link") from exc
    except jwt.InvalidTokenError as exc:
        raise LinkError("Invalid download token") from exc
    if claims.get("token_type") != TOKEN_TYPE:
        raise LinkError("Invalid download token")
    return DownloadClaim(order_id=claims["sub"], path=claims["path"], expires=int(claims["exp"]))


def storage_signature(secret: str, object_path: str, expires: int) -> str:
    """HMAC-SHA256 over the object path and expiry, like a cloud bucket's signed URL."""
    message = f"{object_path}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_storage_signature(secret: str, object_path: str, expires: str, signature: str, now: float) -> None:
    """Raises LinkError unless `signature` signs `object_path` until `expires` and that is still ahead."""
    if not expires.isdigit():
        raise LinkError("Invalid signed URL")
    if not hmac.compare_digest(storage_signature(secret, object_path, int(expires)), signature):
        raise LinkError("Invalid signed URL signature")
    if int(expires) <= now:
        expired_at = datetime.fromtimestamp(int(expires), UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        raise StorageUrlExpired(f"Request signature expired at: {expired_at}")
