"""Calling tenants' webhooks: the queue of calls, the guarded HTTP sender, the tenants' signing secrets."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

from order_core.adapters.api_keys_repo import TENANT_EMAIL_PREFIX, WEBHOOK_SECRET_PREFIX
from order_core.adapters.aws import client
from order_core.adapters.aws import table as dynamodb_table
from order_core.adapters.downloads import DownloadPolicy, HostAllowList, Resolver, guarded_session
from order_core.errors import DownloadRefused
from order_core.services.notify import WebhookFailed, WebhookMessage, WebhookRefused

#: SQS takes at most ten messages per SendMessageBatch.
_BATCH = 10
#: The item in the API keys table that holds a tenant's webhook secret (key hashes are hex: no clash).
SECRET_ITEM_PREFIX = WEBHOOK_SECRET_PREFIX


class WebhookQueue:
    """The queue NotifyFunction consumes, and its dead-letter queue for calls that may never be made."""

    def __init__(self, queue_url: str, dead_letter_url: str = "", sqs: Any = None) -> None:
        self._url = queue_url
        self._dead_letter_url = dead_letter_url
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = client("sqs")
        return self._sqs

    def send(self, messages: Iterable[WebhookMessage]) -> None:
        pending = list(messages)
        for start in range(0, len(pending), _BATCH):
            entries = [
                {"Id": str(index), "MessageBody": message.model_dump_json()}
                for index, message in enumerate(pending[start : start + _BATCH])
            ]
            answer = self.sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"{len(answer['Failed'])} webhook message(s) could not be queued")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a message visible again after ``seconds`` (SQS caps visibility at 12 hours)."""
        self.sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
        )

    def dead_letter(self, body: str, reason: str) -> None:
        """Put a message that must not be retried straight on the dead-letter queue, with its reason."""
        self.sqs.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=body,
            MessageAttributes={"refusal_reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without user info, and Basic credentials from it (Planet allows https://user:pass@host/)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


class GuardedWebhookSender:
    """POSTs through the downloads' guard: https only (http and loopback in local mode), every address the
    host resolves to must be public, no redirects followed."""

    def __init__(
        self, *, local_mode: bool = False, timeout: float = 10.0, resolver: Resolver = socket.getaddrinfo
    ) -> None:
        self.policy = DownloadPolicy(HostAllowList(["*"]), local_mode=local_mode)
        self._session = guarded_session(self.policy, resolver=resolver, pool_size=4)
        self._timeout = timeout

    def check_url(self, url: str) -> None:
        target, _auth = split_credentials(url)
        try:
            self.policy.check_url(target)
        except DownloadRefused as exc:
            raise WebhookRefused(_as_webhook(str(exc))) from None

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        target, auth = split_credentials(url)
        self.check_url(url)
        try:
            response = self._session.post(
                target, data=body, headers=headers, auth=auth, timeout=self._timeout, allow_redirects=False
            )
        except DownloadRefused as exc:  # an address the guard refuses, found when connecting
            raise WebhookRefused(_as_webhook(str(exc))) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise WebhookFailed(f"webhook call failed: {type(exc).__name__}") from None
        response.close()
        return int(response.status_code)


def _as_webhook(reason: str) -> str:
    return reason.replace("refusing to download from", "refusing to call a webhook at")


class WebhookSecretsRepository:
    """Tenants' webhook signing secrets, one item each in the API keys table (encrypted at rest)."""

    def __init__(self, table_name: str, table: Any = None) -> None:
        self._table = table if table is not None else dynamodb_table(table_name)

    def put(self, tenant: str, secret: str) -> None:
        self._table.put_item(
            Item={"key_hash": SECRET_ITEM_PREFIX + tenant, "tenant": tenant, "secret": secret}
        )

    def secret_for(self, tenant: str) -> str | None:
        item = self._table.get_item(Key={"key_hash": SECRET_ITEM_PREFIX + tenant}).get("Item")
        return str(item["secret"]) if item else None

    def put_email(self, tenant: str, address: str) -> None:
        self._table.put_item(
            Item={"key_hash": TENANT_EMAIL_PREFIX + tenant, "tenant": tenant, "email": address}
        )

    def email_for(self, tenant: str) -> str | None:
        item = self._table.get_item(Key={"key_hash": TENANT_EMAIL_PREFIX + tenant}).get("Item")
        return str(item["email"]) if item else None


class SesEmailSender:
    """Order emails through SES, from the operator's verified sender address."""

    def __init__(self, sender: str, ses: Any = None) -> None:
        self._sender = sender
        self._ses = ses

    def send(self, to: str, subject: str, text: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        ses = self._ses if self._ses is not None else client("ses")
        try:
            ses.send_email(
                Source=self._sender,
                Destination={"ToAddresses": [to]},
                Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
            )
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise WebhookFailed(f"email not sent: {code}") from None
