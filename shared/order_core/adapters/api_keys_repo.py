"""DynamoDB access for API keys. Only a key's SHA-256 is stored, never the key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from order_core.adapters.aws import table as dynamodb_table
from order_core.models.tenancy import ApiKeyRecord

#: Items of this table that are tenants' settings, not keys (adapters/webhooks.py): key hashes are hex.
WEBHOOK_SECRET_PREFIX = "webhook-secret#"  # noqa: S105 - a key prefix, not a secret
TENANT_EMAIL_PREFIX = "tenant-email#"
_SETTING_PREFIXES = (WEBHOOK_SECRET_PREFIX, TENANT_EMAIL_PREFIX)


class ApiKeysRepository:
    def __init__(self, table_name: str, table: Any = None) -> None:
        self._table = table if table is not None else dynamodb_table(table_name)

    def put(self, record: ApiKeyRecord) -> None:
        self._table.put_item(
            Item=record.model_dump(mode="json"), ConditionExpression="attribute_not_exists(key_hash)"
        )

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        item = self._table.get_item(Key={"key_hash": key_hash}).get("Item")
        return ApiKeyRecord.model_validate(item) if item else None

    def all(self) -> Iterator[ApiKeyRecord]:
        kwargs: dict[str, Any] = {}
        while True:
            page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                if str(item.get("key_hash", "")).startswith(_SETTING_PREFIXES):
                    continue  # a tenant's webhook secret or email address (adapters/webhooks.py), not a key
                yield ApiKeyRecord.model_validate(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke(self, key_hash: str) -> None:
        self._table.update_item(
            Key={"key_hash": key_hash},
            UpdateExpression="SET revoked = :t",
            ExpressionAttributeValues={":t": True},
        )
