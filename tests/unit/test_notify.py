"""Tenants' webhooks with in-memory fakes: what Planet never sees, what is signed and sent, retries."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_local.template import CfnLoader
from harness import load_event
from order_core.adapters import downloads
from order_core.adapters.memory_store import InMemoryOrderStore
from order_core.adapters.webhooks import GuardedWebhookSender, split_credentials
from order_core.errors import RetryLater
from order_core.models.order import LandedFile, OrderRecord, Phase
from order_core.models.planet import OrderRequest, OrderState
from order_core.services.auth import set_tenant_email
from order_core.services.finalize import FinalizeService
from order_core.services.links import DownloadLinks
from order_core.services.notify import (
    MAX_RECEIVES,
    SIGNATURE_HEADER,
    NotifyService,
    WebhookFailed,
    WebhookMessage,
    WebhookRefused,
    messages_for,
    retry_delays,
    sign,
    verify_signature,
)
from order_core.services.orders import new_record
from order_core.services.submit import upstream_request

ROOT = Path(__file__).resolve().parents[2]
HOOK = "https://hooks.example.com/planet"
BASE = "https://gateway.example.com/v1/compute/ops"
SECRET = "whsec_test-secret"
UPSTREAM_ID = "9b7e2d3c-planet-own-id"


def record(
    webhook: dict[str, Any] | None = None, *, email: bool | None = None, files: int = 0
) -> OrderRecord:
    notifications: dict[str, Any] = {}
    if webhook is not None:
        notifications["webhook"] = webhook
    if email is not None:
        notifications["email"] = email
    body = dict(load_event("planet/create_scenes_direct.json"), name="hooked")
    if notifications:
        body["notifications"] = notifications
    order = new_record(OrderRequest.model_validate(body), "team-a")
    results = [
        LandedFile(
            path=f"item-{n}.tif", key=f"orders/{order.order_id}/item-{n}.tif", size=3, md5="m", sha256="s"
        )
        for n in range(files)
    ]
    if files:
        results.append(LandedFile(path="manifest.json", key="k", size=1, md5="m", sha256="s"))
    return order.model_copy(
        update={
            "upstream_order_id": UPSTREAM_ID,
            "results": results,
            "state": OrderState.success,
            "phase": Phase.FINALIZED,
        }
    )


class Sender:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


class Secrets:
    def __init__(self, secret: str | None = SECRET) -> None:
        self.secret = secret
        self.email: str | None = None

    def secret_for(self, tenant: str) -> str | None:
        return self.secret

    def email_for(self, tenant: str) -> str | None:
        return self.email


def service(
    order: OrderRecord, sender: Sender, secrets: Secrets | None = None, base: str = BASE, mailbox: Any = None
) -> NotifyService:
    store = InMemoryOrderStore([order])  # the ended order as NotifyFunction reads it
    links = DownloadLinks("token-signing-key-of-at-least-32-bytes")
    return NotifyService(
        store, sender, secrets or Secrets(), lambda: links, base, clock=lambda: 1_700_000_000, email=mailbox
    )


# --- Planet never sees notifications ----------------------------------------------------------------------


def test_upstream_request_with_webhook_and_email_sends_no_notifications_to_planet() -> None:
    order = record({"url": HOOK, "per_order": True}, email=True)

    sent = upstream_request(order)

    assert "notifications" not in sent
    assert HOOK not in json.dumps(sent)
    assert order.request["notifications"]["webhook"]["url"] == HOOK  # kept for the gateway's own call


# --- signing ----------------------------------------------------------------------------------------------


def test_signature_round_trip_verifies_and_a_changed_body_or_secret_does_not() -> None:
    body = b'{"id":"ours"}'
    header = sign(SECRET, body, 1_700_000_000)

    assert verify_signature(SECRET, body, header, now=1_700_000_010)
    assert not verify_signature(SECRET, body + b" ", header, now=1_700_000_010)
    assert not verify_signature("whsec_other", body, header, now=1_700_000_010)
    assert not verify_signature(SECRET, body, "t=1,v1=zz", now=1_700_000_010)


def test_signature_older_than_the_tolerance_is_refused() -> None:
    header = sign(SECRET, b"{}", 1_700_000_000)

    assert not verify_signature(SECRET, b"{}", header, now=1_700_000_000 + 301)


def test_readme_verification_snippet_accepts_the_gateways_signature() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("<!-- webhook-verify -->", 2)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 - the README's own example, run as a receiver would
    body = b'{"id":"ours"}'
    import time

    now = int(time.time())
    assert namespace["verify"](SECRET, body, sign(SECRET, body, now))
    assert not namespace["verify"](SECRET, body + b"x", sign(SECRET, body, now))


# --- what is delivered ------------------------------------------------------------------------------------


def test_per_order_webhook_is_one_signed_call_with_our_id_and_links_never_planets() -> None:
    order = record({"url": HOOK, "per_order": True}, files=2)
    sender = Sender()
    (message,) = messages_for(order)

    assert service(order, sender).deliver(message) is True

    ((url, body, headers),) = sender.calls
    view = json.loads(body)
    assert url == HOOK
    assert view["id"] == order.order_id
    assert view["_links"]["_self"] == f"{BASE}/orders/v2/{order.order_id}"
    assert [r["location"].startswith(f"{BASE}/download/?token=") for r in view["_links"]["results"]] == [
        True
    ] * 3
    assert UPSTREAM_ID not in body.decode()
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER], now=1_700_000_000)


def test_webhook_without_per_order_is_one_call_per_landed_file_each_listing_only_its_file() -> None:
    order = record({"url": HOOK}, files=2)
    sender = Sender()

    messages = messages_for(order)
    for message in messages:
        service(order, sender).deliver(message)

    assert [m.path for m in messages] == ["item-0.tif", "item-1.tif"]
    names = [[r["name"] for r in json.loads(body)["_links"]["results"]] for _url, body, _h in sender.calls]
    assert names == [[f"{order.order_id}/item-0.tif"], [f"{order.order_id}/item-1.tif"]]
    assert len({headers["X-Gateway-Delivery"] for _u, _b, headers in sender.calls}) == 2


def test_order_without_landed_files_gets_one_call_even_without_per_order() -> None:
    assert [m.kind for m in messages_for(record({"url": HOOK}))] == ["order"]


def test_order_without_webhook_or_email_owes_no_notification() -> None:
    assert messages_for(record(None)) == []
    assert messages_for(record(None, email=False)) == []


# --- email ------------------------------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append((to, subject, text))


def test_email_true_sends_one_email_to_the_tenants_address_with_our_id_never_planets() -> None:
    order = record({"url": HOOK, "per_order": True}, email=True)
    secrets, mailbox = Secrets(), Mailbox()
    secrets.email = "ops@team-a.example"
    notify = service(order, Sender(), secrets, mailbox=mailbox)

    messages = messages_for(order)
    for message in messages:
        notify.deliver(message)

    assert [m.kind for m in messages] == ["order", "email"]
    ((to, subject, text),) = mailbox.sent
    assert to == "ops@team-a.example"
    assert "success" in subject
    assert f"{BASE}/orders/v2/{order.order_id}" in text and UPSTREAM_ID not in text


def test_email_is_not_sent_for_a_cancelled_order_as_planet_does_not() -> None:
    order = record(None, email=True).model_copy(update={"state": OrderState.cancelled})

    assert messages_for(order) == []


def test_email_for_a_tenant_without_an_address_is_retried_and_nothing_is_sent() -> None:
    order = record(None, email=True)
    mailbox = Mailbox()

    with pytest.raises(RetryLater, match="no notification email address"):
        service(order, Sender(), Secrets(), mailbox=mailbox).deliver(messages_for(order)[0])
    assert mailbox.sent == []


@pytest.mark.parametrize("address", ["not-an-address", "a@b", "two@@example.com", "x" * 250 + "@example.com"])
def test_set_tenant_email_refuses_what_is_not_an_address(address: str) -> None:
    stored: list[tuple[str, str]] = []

    class Store:
        def put_email(self, tenant: str, value: str) -> None:
            stored.append((tenant, value))

    with pytest.raises(ValueError, match="not an email address"):
        set_tenant_email("team-a", address, Store())
    assert stored == []


def test_finalize_queues_the_call_after_recording_the_outcome_and_a_retry_reuses_its_delivery_id() -> None:
    store = InMemoryOrderStore()
    order = new_record(
        OrderRequest.model_validate(
            dict(load_event("planet/create_scenes_direct.json"), notifications={"webhook": {"url": HOOK}})
        ),
        "team-a",
    )
    store.create(order)
    queued: list[tuple[WebhookMessage, Phase | None]] = []
    published: list[Any] = []

    def queue(messages: Any) -> None:
        current = store.get(order.order_id)
        queued.extend((m, current.phase if current else None) for m in messages)

    class Events:
        def publish(self, event: Any) -> str:
            published.append(event)
            return "id"

    finalizer = FinalizeService(store, Events(), "results", webhooks=queue)  # type: ignore[arg-type]
    finalizer.finalize(order.order_id, upstream_state=None)
    first = list(queued)
    finalizer.finalize(order.order_id, upstream_state=None)  # Step Functions retried it

    assert [(m.kind, phase) for m, phase in first] == [("order", Phase.FINALIZED)]
    assert {m.delivery_id for m, _phase in queued} == {first[0][0].delivery_id}
    assert len(published) == 1


# --- retries ----------------------------------------------------------------------------------------------


def test_retry_schedule_backs_off_and_spans_about_a_day_before_the_dead_letter_queue() -> None:
    delays = retry_delays()

    assert delays[0] == 60 and delays == sorted(delays) and max(delays) <= 43_200  # SQS visibility cap
    assert 24 * 3600 <= sum(delays) < 26 * 3600
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader
    redrive = template["Resources"]["WebhookQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == MAX_RECEIVES == len(delays) + 1


@pytest.mark.parametrize("failure", [500, 404, WebhookFailed("webhook call failed: ConnectTimeout")])
def test_failed_call_is_retried_after_the_backoff_for_its_attempt(failure: int | Exception) -> None:
    order = record({"url": HOOK, "per_order": True})
    (message,) = messages_for(order)

    with pytest.raises(RetryLater) as retry:
        service(order, Sender(failure)).deliver(message, receive_count=3)

    assert retry.value.seconds == retry_delays()[2]


def test_call_for_an_order_whose_outcome_is_not_recorded_is_retried_and_sends_nothing() -> None:
    order = record({"url": HOOK, "per_order": True}).model_copy(update={"phase": Phase.DELIVERING})
    sender = Sender()

    with pytest.raises(RetryLater) as retry:
        service(order, sender).deliver(messages_for(order)[0], receive_count=1)

    assert retry.value.seconds == retry_delays()[0]
    assert sender.calls == []


def test_tenant_without_a_secret_gets_no_unsigned_call_and_is_retried() -> None:
    order = record({"url": HOOK, "per_order": True})
    sender = Sender()

    with pytest.raises(RetryLater, match="no webhook secret"):
        service(order, sender, Secrets(None)).deliver(messages_for(order)[0])
    assert sender.calls == []


# --- the guard --------------------------------------------------------------------------------------------


def resolving_to(address: str) -> Any:
    def resolve(host: str, port: int, *_args: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "scheme 'http'"),
        ("https://10.1.2.3/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://127.0.0.1:8443/x", "loopback"),
    ],
)
def test_webhook_target_outside_the_guard_is_refused_in_aws(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        GuardedWebhookSender().post(url, b"{}", {})


@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "192.168.0.10"])
def test_webhook_host_that_resolves_to_a_private_address_is_never_connected_to(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connected: list[Any] = []
    monkeypatch.setattr(downloads, "create_connection", lambda *a, **k: connected.append(a))
    sender = GuardedWebhookSender(resolver=resolving_to(address))

    with pytest.raises(WebhookRefused, match="refusing to connect"):
        sender.post(HOOK, b"{}", {})
    assert connected == []


def test_local_mode_allows_a_loopback_http_target_but_still_refuses_link_local() -> None:
    sender = GuardedWebhookSender(local_mode=True)

    sender.check_url("http://127.0.0.1:9999/hook")
    with pytest.raises(WebhookRefused, match="link-local"):
        sender.check_url("http://169.254.169.254/")


def test_basic_credentials_in_the_webhook_url_become_an_authorization_not_part_of_the_url() -> None:
    assert split_credentials("https://user:p%40ss@hooks.example.com:8443/x?a=1") == (
        "https://hooks.example.com:8443/x?a=1",
        ("user", "p@ss"),
    )
