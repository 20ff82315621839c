"""Rate limits, fault injection and the /_fake admin API."""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from planet_fake.server import FakePlanetServer

from .support import FAST, PlanetApi, fetch, results_by_path, scenes_request

ANALYTIC = "PSScene/20220304_093300_37_2430_3B_AnalyticMS.tif"


def _add_fault(fake: FakePlanetServer, **rule: Any) -> dict[str, Any]:
    response = requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=10)
    assert response.status_code == 201, response.text
    added: dict[str, Any] = response.json()
    return added


def _done_order(fake: FakePlanetServer, api: PlanetApi) -> dict[str, Any]:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    return api.create_and_wait(scenes_request())


def _storage_url(order: dict[str, Any]) -> str:
    redirect = fetch(results_by_path(order)[ANALYTIC]["location"], allow_redirects=False)
    assert redirect.status_code == 302
    return redirect.headers["Location"]


def _raw_get(url: str) -> tuple[http.client.HTTPResponse, bytes, bool]:
    """GET with http.client, which reports a short body instead of hiding it: (response, body, complete)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    try:
        return response, response.read(), True
    except http.client.IncompleteRead as exc:
        return response, exc.partial, False
    finally:
        connection.close()


def test_rate_limit_exceeded_returns_429_with_retry_after(
    fake: FakePlanetServer, api: PlanetApi, other_api: PlanetApi
) -> None:
    fake.store.update_config({"rate_limits": True})
    order_id = api.create(scenes_request())["id"]

    statuses = [api.get(order_id).status_code for _ in range(3)]
    refused = api.get(order_id)

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["message"]
    assert other_api.list().status_code == 200, "limits are per API key"
    assert api.list().status_code == 200, "limits are per operation"
    time.sleep(1.05)
    assert api.get(order_id).status_code == 200, "the window slides"


def test_rate_limit_on_downloads_counts_the_order_owners_requests(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    order = _done_order(fake, api)
    fake.store.update_config({"rate_limits": True})
    location = results_by_path(order)[ANALYTIC]["location"]

    statuses = [fetch(location, allow_redirects=False).status_code for _ in range(6)]

    assert statuses == [302] * 5 + [429]


def test_rate_limits_disabled_never_refuse(fake: FakePlanetServer, api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]

    assert {api.get(order_id).status_code for _ in range(10)} == {200}


def test_status_fault_answers_given_status_then_expires(fake: FakePlanetServer, api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]
    _add_fault(fake, op="get", kind="status", status=503, retry_after=2, times=2)

    responses = [api.get(order_id) for _ in range(3)]

    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].headers["Retry-After"] == "2"
    assert responses[0].json() == {"message": "Injected fault: 503 Service Unavailable"}
    assert api.list().status_code == 200


def test_reset_fault_drops_connection_without_response(fake: FakePlanetServer, api: PlanetApi) -> None:
    _add_fault(fake, op="create", kind="reset")

    with pytest.raises(requests.ConnectionError):
        api.session.post(api.url("/orders/v2"), json=scenes_request(), timeout=10)

    assert fake.store.orders() == []
    assert api.create(scenes_request())["state"] == "queued"


def test_truncate_fault_sends_full_length_header_but_half_the_body(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    url = _storage_url(_done_order(fake, api))
    _add_fault(fake, op="storage", kind="truncate")

    response, body, complete = _raw_get(url)

    assert response.status == 200
    assert response.headers["Content-Length"] == str(FAST.file_size)
    assert not complete
    assert len(body) == FAST.file_size // 2
    assert body == requests.get(url, timeout=10).content[: FAST.file_size // 2]


def test_corrupt_fault_changes_bytes_but_not_length(fake: FakePlanetServer, api: PlanetApi) -> None:
    url = _storage_url(_done_order(fake, api))
    clean = requests.get(url, timeout=10).content
    _add_fault(fake, op="storage", kind="corrupt")

    corrupted = requests.get(url, timeout=10).content

    assert len(corrupted) == len(clean)
    assert sum(a != b for a, b in zip(clean, corrupted, strict=True)) == 1


def test_download_fault_of_body_kind_hits_the_storage_request_it_redirects_to(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    results = results_by_path(_done_order(fake, api))
    location = results[ANALYTIC]["location"]
    clean = fetch(location).content
    _add_fault(fake, op="download", kind="corrupt")

    corrupted = fetch(location).content

    assert len(corrupted) == len(clean) and corrupted != clean
    assert fetch(location).content == clean


def test_fault_with_path_contains_only_hits_matching_requests(fake: FakePlanetServer, api: PlanetApi) -> None:
    order = _done_order(fake, api)
    results = results_by_path(order)
    _add_fault(fake, op="storage", kind="status", status=500, path_contains="udm2")

    analytic = fetch(results[ANALYTIC]["location"])
    udm2 = fetch(results[ANALYTIC.replace("AnalyticMS", "udm2")]["location"])

    assert (analytic.status_code, udm2.status_code) == (200, 500)


def test_fault_with_body_contains_only_hits_the_create_whose_body_has_it(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    _add_fault(fake, op="create", kind="status", status=503, body_contains="[gw:target]")

    other = api.session.post(api.url("/orders/v2"), json=scenes_request("other [gw:else]"), timeout=10)
    target = api.session.post(api.url("/orders/v2"), json=scenes_request("mine [gw:target]"), timeout=10)
    again = api.session.post(api.url("/orders/v2"), json=scenes_request("mine [gw:target]"), timeout=10)

    assert (other.status_code, target.status_code, again.status_code) == (202, 503, 202)
    assert [o.name for o in fake.store.orders()] == ["other [gw:else]", "mine [gw:target]"]


def test_fault_with_file_contains_hits_downloads_and_storage_of_that_file_only(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    results = results_by_path(_done_order(fake, api))
    udm2 = ANALYTIC.replace("AnalyticMS", "udm2")
    _add_fault(fake, op="download", kind="status", status=429, file_contains="_udm2.tif")
    _add_fault(fake, op="storage", kind="status", status=503, file_contains="AnalyticMS.tif")

    downloads = [
        fetch(results[ANALYTIC]["location"], allow_redirects=False).status_code,
        fetch(results[udm2]["location"], allow_redirects=False).status_code,
    ]
    storage = [fetch(results[udm2]["location"]).status_code, fetch(results[ANALYTIC]["location"]).status_code]

    assert downloads == [302, 429]
    assert storage == [200, 503]


def test_fault_with_query_contains_only_hits_lists_whose_query_has_it(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    _add_fault(fake, op="list", kind="status", status=502, query_contains="[gw:target]")

    statuses = [
        api.list(name__contains="[gw:else]").status_code,
        api.list(name__contains="[gw:target]").status_code,
        api.list(name__contains="[gw:target]").status_code,
    ]

    assert statuses == [200, 502, 200]


def test_fault_with_order_id_hits_that_orders_gets_and_downloads_only(
    fake: FakePlanetServer, api: PlanetApi
) -> None:
    fake.store.update_config({"queued_seconds": 0, "running_seconds": 0})
    mine = api.create_and_wait(scenes_request("mine"))
    other = api.create_and_wait(scenes_request("other"))
    _add_fault(fake, op="get", kind="status", status=502, order_id=mine["id"])
    _add_fault(fake, op="download", kind="status", status=401, order_id=mine["id"], times=2)

    gets = [
        api.get(other["id"]).status_code,
        api.get(mine["id"]).status_code,
        api.get(mine["id"]).status_code,
    ]
    downloads = [
        fetch(results_by_path(other)[ANALYTIC]["location"], allow_redirects=False).status_code,
        fetch(results_by_path(mine)[ANALYTIC]["location"], allow_redirects=False).status_code,
        fetch(results_by_path(mine)[ANALYTIC]["location"], allow_redirects=False).status_code,
        fetch(results_by_path(mine)[ANALYTIC]["location"], allow_redirects=False).status_code,
    ]

    assert gets == [200, 502, 200]
    assert downloads == [302, 401, 401, 302]


def test_fault_for_any_op_hits_the_next_api_request(fake: FakePlanetServer, api: PlanetApi) -> None:
    _add_fault(fake, op="any", kind="status", status=502)

    assert api.session.get(api.url("/stats/orders/v2"), timeout=10).status_code == 502
    assert api.session.get(api.url("/stats/orders/v2"), timeout=10).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [{"op": "get"}, {"op": "teleport", "kind": "status"}, {"op": "get", "kind": "status", "status": 200}],
)
def test_fault_rule_invalid_returns_400(fake: FakePlanetServer, rule: dict[str, Any]) -> None:
    assert requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=10).status_code == 400


def test_fault_rules_are_listed_until_used_and_can_be_cleared(fake: FakePlanetServer) -> None:
    _add_fault(fake, op="get", kind="reset", times=3)
    _add_fault(fake, op="list", kind="truncate")

    pending = requests.get(f"{fake.url}/_fake/faults", timeout=10).json()["faults"]
    cleared = requests.delete(f"{fake.url}/_fake/faults", timeout=10)

    assert [(rule["op"], rule["times"]) for rule in pending] == [("get", 3), ("list", 1)]
    assert cleared.status_code == 204
    assert requests.get(f"{fake.url}/_fake/faults", timeout=10).json() == {"faults": []}


def test_request_log_shows_each_attempt_with_status_and_fault(fake: FakePlanetServer, api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]
    _add_fault(fake, op="get", kind="status", status=429, times=1)
    api.get(order_id)
    api.get(order_id)

    log = requests.get(f"{fake.url}/_fake/requests", timeout=10).json()["requests"]

    assert [(r["op"], r["method"], r["status"], r["fault"]) for r in log] == [
        ("create", "POST", 202, None),
        ("get", "GET", 429, "status"),
        ("get", "GET", 200, None),
    ]
    assert log[1]["path"] == f"/compute/ops/orders/v2/{order_id}"
    assert requests.delete(f"{fake.url}/_fake/requests", timeout=10).status_code == 204
    assert requests.get(f"{fake.url}/_fake/requests", timeout=10).json() == {"requests": []}


def test_admin_orders_dump_lists_every_keys_orders(
    fake: FakePlanetServer, api: PlanetApi, other_api: PlanetApi
) -> None:
    mine = api.create(scenes_request("mine"))
    theirs = other_api.create(scenes_request("theirs"))

    dump = requests.get(f"{fake.url}/_fake/orders", timeout=10).json()

    assert dump["count"] == 2
    assert [(o["id"], o["name"], o["state"]) for o in dump["orders"]] == [
        (mine["id"], "mine", "queued"),
        (theirs["id"], "theirs", "queued"),
    ]
    assert dump["orders"][0]["api_key"] == "key-alice"
    assert dump["orders"][1]["request"]["products"] == scenes_request()["products"]


def test_admin_reset_forgets_orders_and_faults(fake: FakePlanetServer, api: PlanetApi) -> None:
    order_id = api.create(scenes_request())["id"]
    _add_fault(fake, op="stats", kind="reset")

    assert requests.post(f"{fake.url}/_fake/reset", timeout=10).status_code == 204

    assert api.get(order_id).status_code == 404
    assert api.session.get(api.url("/stats/orders/v2"), timeout=10).status_code == 200


def test_admin_config_changes_apply_to_new_orders(fake: FakePlanetServer, api: PlanetApi) -> None:
    response = requests.post(
        f"{fake.url}/_fake/config", json={"queued_seconds": 60, "outcome": "failed"}, timeout=10
    )

    assert response.status_code == 200
    assert requests.get(f"{fake.url}/_fake/config", timeout=10).json() == response.json()
    assert response.json()["queued_seconds"] == 60 and response.json()["outcome"] == "failed"
    order_id = api.create(scenes_request())["id"]
    time.sleep(FAST.queued_seconds + FAST.running_seconds)
    assert api.get(order_id).json()["state"] == "queued"


@pytest.mark.parametrize("changes", [{"queued_seconds": -1}, {"outcome": "maybe"}, {"no_such_field": 1}, [1]])
def test_admin_config_invalid_change_returns_400_and_keeps_config(
    fake: FakePlanetServer, changes: object
) -> None:
    response = requests.post(f"{fake.url}/_fake/config", json=changes, timeout=10)

    assert response.status_code == 400
    assert fake.store.config == FAST
