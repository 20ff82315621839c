"""PlanetClient against mocked HTTP: status mapping, Retry-After, ambiguity, retries, paging, key hygiene."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
import responses
from order_core.adapters.planet_client import PlanetClient, parse_retry_after
from order_core.errors import (
    UpstreamAuthError,
    UpstreamClientError,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.models.planet import OrderRequest, OrderState
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

BASE = "https://api.planet.test/compute/ops"
API_KEY = "PLAK-unit-test-0123456789abcdef"
ORDER_ID = "98d124c3-0857-49f5-aa1b-2250c6f907ed"
ORDERS = f"{BASE}/orders/v2"
BULK_CANCEL = f"{BASE}/bulk/orders/v2/cancel"


def order_json(order_id: str = ORDER_ID, state: str = "queued", **extra: Any) -> dict[str, Any]:
    return {
        "_links": {"_self": f"{ORDERS}/{order_id}"},
        "created_on": "2022-11-16T02:54:43.824Z",
        "error_hints": [],
        "id": order_id,
        "last_message": "Preparing order",
        "last_modified": "2022-11-16T02:54:43.824Z",
        "name": "simple order",
        "products": [
            {"item_ids": ["20220304_093300_37_2430"], "item_type": "PSScene", "product_bundle": "visual"}
        ],
        "state": state,
        **extra,
    }


CREATE_BODY = {
    "name": "simple order",
    "source_type": "scenes",
    "products": [
        {"item_ids": ["20220304_093300_37_2430"], "item_type": "PSScene", "product_bundle": "visual"}
    ],
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def client() -> PlanetClient:
    return PlanetClient(BASE, API_KEY)


def sent_json(mocked: responses.RequestsMock) -> Any:
    body = mocked.calls[0].request.body
    assert body is not None
    return json.loads(body)


def assert_key_hidden(*things: object) -> None:
    for thing in things:
        assert API_KEY not in str(thing)
        assert API_KEY not in repr(thing)


# --- happy paths -------------------------------------------------------------------------------------------


def test_create_order_model_posts_wire_json_with_api_key(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.post(ORDERS, json=order_json(), status=202)

    order = client.create_order(OrderRequest.model_validate(CREATE_BODY))

    sent = mocked.calls[0].request
    assert sent_json(mocked) == {**CREATE_BODY, "order_type": "full"}
    assert sent.headers["Authorization"] == f"api-key {API_KEY}"
    assert sent.headers["User-Agent"] == "planet-orders-gateway"
    assert sent.headers["Content-Type"] == "application/json"
    assert order.id == ORDER_ID and order.state is OrderState.queued


def test_create_order_dict_sent_as_given(mocked: responses.RequestsMock, client: PlanetClient) -> None:
    mocked.post(ORDERS, json=order_json(), status=202)

    client.create_order({"name": "x", "products": [], "future_field": 1})

    assert sent_json(mocked) == {"name": "x", "products": [], "future_field": 1}


def test_get_order_success_returns_results(mocked: responses.RequestsMock, client: PlanetClient) -> None:
    results = [
        {"name": f"{ORDER_ID}/manifest.json", "location": "https://dl/?token=t", "delivery": "success"}
    ]
    mocked.get(
        f"{ORDERS}/{ORDER_ID}", json=order_json(state="success", _links={"_self": "s", "results": results})
    )

    order = client.get_order(ORDER_ID)

    assert order.is_final
    assert [r.name for r in order.results] == [f"{ORDER_ID}/manifest.json"]


def test_get_order_every_call_has_the_configured_timeout(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())

    PlanetClient(BASE, API_KEY, timeout=(1.5, 9.0)).get_order(ORDER_ID)

    # responses records the keyword arguments requests passed to the adapter.
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 9.0)  # type: ignore[attr-defined]


def test_get_order_id_with_slashes_cannot_escape_the_order_path(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/..%2Fstats", json=order_json())

    client.get_order("../stats")

    assert mocked.calls[0].request.url == f"{ORDERS}/..%2Fstats"


def test_cancel_order_queued_returns_cancelled_order(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.put(f"{ORDERS}/{ORDER_ID}", json=order_json(state="cancelled", last_message="Cancel success"))

    assert client.cancel_order(ORDER_ID).state is OrderState.cancelled


def test_cancel_orders_without_ids_posts_empty_object(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    result = {"result": {"failed": {"count": 0, "failures": []}, "succeeded": {"count": 6}}}
    mocked.post(BULK_CANCEL, json=result)

    assert client.cancel_orders() == result
    assert sent_json(mocked) == {}


def test_cancel_orders_with_ids_posts_them(mocked: responses.RequestsMock, client: PlanetClient) -> None:
    mocked.post(
        BULK_CANCEL, json={"result": {"failed": {"count": 0, "failures": []}, "succeeded": {"count": 2}}}
    )

    client.cancel_orders(["a", "b"])

    assert sent_json(mocked) == {"order_ids": ["a", "b"]}


def test_cancel_orders_empty_list_refused_without_request(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    with pytest.raises(ValueError, match="pass None"):
        client.cancel_orders([])

    assert len(mocked.calls) == 0


def test_aggregated_order_stats_returns_counts(mocked: responses.RequestsMock, client: PlanetClient) -> None:
    stats = {
        "organization": {"queued_orders": 0, "running_orders": 6},
        "user": {"queued_orders": 0, "running_orders": 0},
    }
    mocked.get(f"{BASE}/stats/orders/v2", json=stats)

    assert client.aggregated_order_stats() == stats


# --- status mapping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, UpstreamClientError),
        (401, UpstreamAuthError),
        (403, UpstreamAuthError),
        (404, UpstreamNotFound),
        (409, UpstreamConflict),
        (422, UpstreamClientError),
        (429, UpstreamRateLimited),
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (504, UpstreamUnavailable),
    ],
)
def test_get_order_error_status_raises_mapped_exception(
    mocked: responses.RequestsMock, client: PlanetClient, status: int, exception: type[Exception]
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json={"message": "nope"}, status=status)

    with pytest.raises(UpstreamError) as caught:
        client.get_order(ORDER_ID)

    assert type(caught.value) is exception
    assert caught.value.status == status
    assert_key_hidden(caught.value)


def test_get_order_404_message_carries_planet_message_and_raw_body(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    body = json.dumps({"message": f"Could not load order ID: {ORDER_ID}."})
    mocked.get(f"{ORDERS}/{ORDER_ID}", body=body, status=404)

    with pytest.raises(UpstreamNotFound) as caught:
        client.get_order(ORDER_ID)

    assert str(caught.value) == (
        f"Planet GET /compute/ops/orders/v2/{ORDER_ID} returned HTTP 404: "
        f"Could not load order ID: {ORDER_ID}."
    )
    assert caught.value.body == body


def test_create_order_400_message_lists_planet_field_messages(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    body = {
        "field": {"Products": [{"message": "Bad item type 'invalid' for bundle type 'analytic'"}]},
        "general": [{"message": "Unable to accept order"}],
    }
    mocked.post(ORDERS, json=body, status=400)

    with pytest.raises(UpstreamClientError) as caught:
        client.create_order(CREATE_BODY)

    assert str(caught.value).endswith(
        "HTTP 400: Unable to accept order; Products: Bad item type 'invalid' for bundle type 'analytic'"
    )


def test_get_order_huge_planet_message_truncated(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json={"message": "x" * 5000}, status=400)

    with pytest.raises(UpstreamClientError) as caught:
        client.get_order(ORDER_ID)

    assert len(str(caught.value)) < 600
    assert len(caught.value.body) > 5000


def test_get_order_html_error_page_message_has_status_only(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", body="<html>Bad Gateway</html>", status=502)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.get_order(ORDER_ID)

    assert str(caught.value) == f"Planet GET /compute/ops/orders/v2/{ORDER_ID} returned HTTP 502"
    assert caught.value.body == "<html>Bad Gateway</html>"


# --- Retry-After -------------------------------------------------------------------------------------------


def test_get_order_429_with_delta_seconds_reports_retry_after(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(
        f"{ORDERS}/{ORDER_ID}", json={"message": "slow down"}, status=429, headers={"Retry-After": "7"}
    )

    with pytest.raises(UpstreamRateLimited) as caught:
        client.get_order(ORDER_ID)

    assert caught.value.retry_after == 7


def test_get_order_429_with_http_date_reports_seconds_until_then(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    mocked.get(f"{ORDERS}/{ORDER_ID}", status=429, headers={"Retry-After": when})

    with pytest.raises(UpstreamRateLimited) as caught:
        client.get_order(ORDER_ID)

    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


def test_get_order_429_without_header_reports_no_retry_after(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", status=429)

    with pytest.raises(UpstreamRateLimited) as caught:
        client.get_order(ORDER_ID)

    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past: no wait, not a negative one
        ("-5", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
    ],
)
def test_parse_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=now) == seconds


# --- ambiguity and retries ---------------------------------------------------------------------------------


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connect is refused: the request never left."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/compute/ops/orders/v2", reason))  # type: ignore[arg-type]


def reset_after_send() -> requests.ConnectionError:
    """What requests raises when the server drops the connection after reading the request."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", RemoteDisconnected("closed")))


@pytest.mark.parametrize(
    ("failure", "ambiguous"),
    [
        (requests.ReadTimeout("read timed out"), True),
        (reset_after_send(), True),
        (requests.exceptions.ChunkedEncodingError("truncated"), True),
        (requests.ConnectTimeout("connect timed out"), False),
        (refused(), False),
    ],
)
def test_create_order_transport_failure_ambiguous_only_if_request_may_have_arrived(
    mocked: responses.RequestsMock, client: PlanetClient, failure: Exception, ambiguous: bool
) -> None:
    mocked.post(ORDERS, body=failure)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.create_order(CREATE_BODY)

    assert caught.value.ambiguous is ambiguous
    assert caught.value.status is None
    assert_key_hidden(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_order_5xx_is_ambiguous(
    mocked: responses.RequestsMock, client: PlanetClient, status: int
) -> None:
    mocked.post(ORDERS, status=status)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.create_order(CREATE_BODY)

    assert caught.value.ambiguous is True


def test_cancel_orders_read_timeout_is_ambiguous(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.post(BULK_CANCEL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(UpstreamUnavailable) as caught:
        client.cancel_orders(["a"])

    assert caught.value.ambiguous is True


def test_get_order_5xx_and_timeout_not_ambiguous(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", status=503)
    mocked.get(f"{ORDERS}/a", body=requests.ReadTimeout("read timed out"))

    for order_id in (ORDER_ID, "a"):
        with pytest.raises(UpstreamUnavailable) as caught:
            client.get_order(order_id)
        assert caught.value.ambiguous is False


def test_create_order_2xx_with_unreadable_body_is_ambiguous(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.post(ORDERS, body="<html>proxy says hi</html>", status=202)

    with pytest.raises(UpstreamUnavailable) as caught:
        client.create_order(CREATE_BODY)

    assert caught.value.ambiguous is True and caught.value.status == 202


def test_get_order_2xx_that_is_not_an_order_raises_unavailable_with_its_status(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json={"id": ORDER_ID, "state": None})

    with pytest.raises(UpstreamUnavailable, match="state") as caught:
        client.get_order(ORDER_ID)
    assert caught.value.status == 200


def test_get_order_unknown_state_new_fields_and_nulls_read_as_a_running_order(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    body = order_json(state="archiving", error_hints=None, new_planet_field={"x": [1, None]})
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=body)

    order = client.get_order(ORDER_ID)

    assert (order.state, order.reported_state, order.error_hints) == (OrderState.running, "archiving", [])


def test_get_bundles_spec_returns_planets_object_with_the_given_timeout(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    spec = {"bundles": {"visual": {"assets": {"PSScene": ["ortho_visual"]}}}, "version": "v"}
    mocked.get(f"{BASE}/bundles/spec", json=spec)

    assert client.get_bundles_spec(timeout=(1.0, 2.0)) == spec
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.0, 2.0)
    assert mocked.calls[0].request.headers["Authorization"] == f"api-key {API_KEY}"


def test_get_bundles_spec_missing_at_planet_raises_not_found(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{BASE}/bundles/spec", status=404, json={"message": "Not found"})

    with pytest.raises(UpstreamNotFound):
        client.get_bundles_spec()


class RefusingNetwork:
    """Stands in for the socket layer under urllib3 so its real Retry logic runs without any socket."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def refusing_network(monkeypatch: pytest.MonkeyPatch) -> RefusingNetwork:
    network = RefusingNetwork()
    monkeypatch.setattr("urllib3.util.connection.create_connection", network)
    return network


@pytest.mark.parametrize(
    ("call", "attempts"),
    [
        (lambda c: c.get_order(ORDER_ID), 3),
        (lambda c: c.aggregated_order_stats(), 3),
        (lambda c: c.cancel_order(ORDER_ID), 3),
        (lambda c: c.create_order(CREATE_BODY), 1),
        (lambda c: c.cancel_orders(["a"]), 1),
    ],
    ids=["get", "stats", "put-cancel", "post-create", "post-bulk-cancel"],
)
def test_refused_connection_retried_immediately_for_get_put_only(
    refusing_network: RefusingNetwork, call: Any, attempts: int
) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        call(PlanetClient(BASE, API_KEY))

    assert refusing_network.attempts == attempts
    assert caught.value.ambiguous is False  # never connected, so never sent


def test_get_order_connect_retry_does_not_sleep(
    refusing_network: RefusingNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleeping(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s inside Lambda")

    monkeypatch.setattr("time.sleep", no_sleeping)

    with pytest.raises(UpstreamUnavailable):
        PlanetClient(BASE, API_KEY).get_order(ORDER_ID)

    assert refusing_network.attempts == 3


# --- listing -----------------------------------------------------------------------------------------------


def page(orders: list[dict[str, Any]], next_url: str | None) -> dict[str, Any]:
    links: dict[str, Any] = {"_self": ORDERS}
    if next_url:
        links["next"] = next_url
    return {"_links": links, "orders": orders}


def test_list_orders_follows_next_links_until_absent(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    page2, page3 = f"{ORDERS}?page_marker=m2", f"{ORDERS}?page_marker=m3"
    mocked.get(ORDERS, json=page([order_json("o1"), order_json("o2")], page2))
    mocked.get(page2, json=page([order_json("o3")], page3))
    mocked.get(page3, json=page([order_json("o4", state="success")], None))

    orders = list(client.list_orders(name="simple order"))

    assert [o.id for o in orders] == ["o1", "o2", "o3", "o4"]
    urls = [call.request.url for call in mocked.calls]
    assert urls == [f"{ORDERS}?source_type=all&name=simple+order", page2, page3]


def test_list_orders_repeated_next_link_stops(mocked: responses.RequestsMock, client: PlanetClient) -> None:
    page2 = f"{ORDERS}?page_marker=m2"
    mocked.get(ORDERS, json=page([order_json("o1")], page2))
    mocked.get(page2, json=page([order_json("o2")], page2))

    assert [o.id for o in client.list_orders()] == ["o1", "o2"]
    assert len(mocked.calls) == 2


def test_list_orders_filters_encoded_like_the_sdk(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(ORDERS, json=page([], None))

    list(
        client.list_orders(
            state=[OrderState.queued, "running"], hosting=True, source_type="basemaps", name=None
        )
    )

    assert (
        mocked.calls[0].request.url
        == f"{ORDERS}?source_type=basemaps&state=queued&state=running&hosting=true"
    )


def test_list_orders_unknown_filter_refused(client: PlanetClient) -> None:
    with pytest.raises(TypeError, match="name_contains"):
        client.list_orders(name_contains="x")


def test_list_orders_next_link_to_other_host_not_followed(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(ORDERS, json=page([order_json("o1")], "https://collector.example/steal?page_marker=m2"))

    orders = client.list_orders()
    assert next(orders).id == "o1"
    with pytest.raises(UpstreamError, match="another host"):
        next(orders)

    assert len(mocked.calls) == 1


def test_list_orders_error_on_later_page_raised_while_iterating(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    page2 = f"{ORDERS}?page_marker=m2"
    mocked.get(ORDERS, json=page([order_json("o1")], page2))
    mocked.get(page2, status=429, headers={"Retry-After": "2"})

    seen = []
    with pytest.raises(UpstreamRateLimited):
        for order in client.list_orders():
            seen.append(order.id)

    assert seen == ["o1"]


# --- key hygiene -------------------------------------------------------------------------------------------


def test_client_repr_and_attributes_hide_api_key(client: PlanetClient) -> None:
    assert repr(client) == f"PlanetClient(base_url='{BASE}')"
    assert_key_hidden(client, vars(client))


def test_client_errors_hide_api_key_even_when_planet_echoes_nothing_else(
    mocked: responses.RequestsMock, client: PlanetClient
) -> None:
    mocked.get(f"{ORDERS}/{ORDER_ID}", json={"message": "Invalid API key"}, status=401)
    mocked.post(ORDERS, body=requests.ConnectionError("boom"))

    errors = []
    for call in (lambda: client.get_order(ORDER_ID), lambda: client.create_order(CREATE_BODY)):
        with pytest.raises(UpstreamError) as caught:
            call()
        errors.append(caught.value)

    assert_key_hidden(*errors, *(e.__cause__ for e in errors))


def test_client_injected_session_does_not_keep_the_key(mocked: responses.RequestsMock) -> None:
    session = requests.Session()
    mocked.get(f"{ORDERS}/{ORDER_ID}", json=order_json())

    PlanetClient(BASE, API_KEY, session=session).get_order(ORDER_ID)

    assert "Authorization" not in session.headers
    assert mocked.calls[0].request.headers["Authorization"] == f"api-key {API_KEY}"


@pytest.mark.parametrize(("base_url", "api_key"), [("api.planet.com/compute/ops", API_KEY), (BASE, "")])
def test_client_bad_configuration_refused(base_url: str, api_key: str) -> None:
    with pytest.raises(ValueError) as caught:
        PlanetClient(base_url, api_key)

    assert_key_hidden(caught.value)
