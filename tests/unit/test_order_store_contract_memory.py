"""The order store's contract (``tests/order_store_contract.py``) held by the in-memory store."""

from __future__ import annotations

import pytest
from order_core.adapters.memory_store import InMemoryOrderStore
from order_store_contract import *  # noqa: F403 - the contract's tests, collected here


@pytest.fixture
def store() -> InMemoryOrderStore:
    return InMemoryOrderStore()
