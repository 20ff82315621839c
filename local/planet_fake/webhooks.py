"""Planet's order notifications: the fake calls an order's `notifications.webhook.url` as Planet does.

Planet calls the webhook once per delivered item by default, or once per order when `per_order` is true,
when the order is ready (reference: Planet's "Notifications" page; it ends success, partial or failed; a
cancelled order is ended too, so the fake calls then as well). The body is the order as GET returns it.
Calls are made from a background thread that looks at every order's timeline a few times a second, so a
call comes at most that late; each call is made once, never retried (a lost call is lost, as when Planet's
call meets a receiver that is down).

Fault rules with `op: "webhook"` (POST /_fake/faults) drop a call (`kind: "drop"`) or delay it
(`kind: "delay"`, `delay_seconds`); they match on `order_id` (Planet's) and `path_contains` (the call's
target path, `/webhook/<planet order id>/<item id or "order">`), like every other rule.
GET /_fake/webhooks lists the calls made, dropped and delayed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import requests

from .faults import FaultBook
from .orders import ACTIVE_STATES, Order

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2
CALL_TIMEOUT_SECONDS = 5.0
LOG_SIZE = 10_000


@dataclass
class WebhookCall:
    order_id: str  # Planet's order id
    target: str  # "order" (per_order) or the delivered item's id
    url: str
    status: int | None = None
    fault: str | None = None  # "drop" or "delay"
    error: str | None = None


def _webhook(order: Order) -> dict[str, Any] | None:
    notifications = order.request.get("notifications")
    webhook = notifications.get("webhook") if isinstance(notifications, dict) else None
    if isinstance(webhook, dict) and isinstance(webhook.get("url"), str) and webhook["url"]:
        return webhook
    return None


class WebhookSender:
    """Calls each order's webhook as its timeline reaches the moments Planet would call it."""

    def __init__(
        self,
        orders: Callable[[], list[Order]],
        faults: FaultBook,
        document: Callable[[Order, datetime], dict[str, Any]],
        now: Callable[[], datetime],
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        self._orders = orders
        self._faults = faults
        self._document = document
        self._now = now
        self._enabled = enabled
        self._sent: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._log: deque[WebhookCall] = deque(maxlen=LOG_SIZE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="planet-fake-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(call) for call in self._log]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()
            self._sent.clear()

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                if self._enabled():
                    self.tick()
            except Exception:  # one bad order must not stop every other order's calls
                log.exception("webhook tick failed")

    def tick(self) -> None:
        """Make every call due by now (public for tests: no thread needed)."""
        now = self._now()
        for order in self._orders():
            webhook = _webhook(order)
            if webhook is None:
                continue
            snap = order.snapshot(now)
            if webhook.get("per_order") is True:
                due = ["order"] if snap.state not in ACTIVE_STATES else []
            else:
                states = snap.item_states or ()
                due = [
                    item.item_id
                    for item, state in zip(order.items, states, strict=False)
                    if state == "success"
                ]
            for target in due:
                key = (order.id, target)
                with self._lock:
                    if key in self._sent:
                        continue
                    self._sent.add(key)
                self._call(order, target, str(webhook["url"]), now)

    def _call(self, order: Order, target: str, url: str, now: datetime) -> None:
        call = WebhookCall(order_id=order.id, target=target, url=url)
        with self._lock:
            self._log.append(call)
        rule = self._faults.take("webhook", f"/webhook/{order.id}/{target}", exact=True)
        body = self._document(order, now)
        if rule is not None and rule.kind == "drop":
            call.fault = "drop"
            return
        delay = rule.delay_seconds if rule is not None and rule.kind == "delay" else 0.0
        if rule is not None:
            call.fault = rule.kind
        timer = threading.Timer(delay, self._post, args=(call, body))
        timer.daemon = True
        timer.start()

    def _post(self, call: WebhookCall, body: dict[str, Any]) -> None:
        try:
            response = self._session.post(call.url, json=body, timeout=CALL_TIMEOUT_SECONDS)
            call.status = response.status_code
        except requests.RequestException as exc:
            call.error = type(exc).__name__
