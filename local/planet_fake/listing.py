"""GET /orders/v2: the fake's glue around `order_core.services.listing`.

Filters, sorting and keyset paging are Planet's list semantics, implemented once in
`order_core.services.listing` and shared with the gateway's own list endpoint. What is left here is the
fake's part: which orders a key may see (its own, or everyone's with `user_id=all`) and rendering its
in-memory orders, as they stand at request time, as the Planet-shaped documents the shared code lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from order_core.services.listing import ListQueryError, page, parse_query

from .orders import Order
from .store import FakePlanetStore

__all__ = ["ListQueryError", "list_page"]


def list_page(
    store: FakePlanetStore,
    api_key: str,
    params: Mapping[str, Sequence[str]],
    *,
    self_url: str,
    order_url: Callable[[Order], str],
    now: datetime,
) -> dict[str, Any]:
    """The list response body for `api_key`: one page of its matching orders, or everyone's with
    `user_id=all`. `params` holds every value of each query parameter; `self_url` is the request URL
    without its query string. Raises ListQueryError for any invalid query value."""
    query = parse_query(params, default_page_size=store.config.page_size)
    if query.user_id not in (None, "all"):
        raise ListQueryError("user_id", "the fake knows no user ids; only user_id=all is supported")
    orders = store.orders(None if query.user_id == "all" else api_key)
    documents = (order.document(order.snapshot(now), order_url(order), None) for order in orders)
    return page(documents, query, self_url=self_url)
