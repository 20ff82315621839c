"""Each handler → service → boto3 under moto, with the fake Planet upstream."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from harness import EVENTS, AwsStack, intake_event, load_event
from harness import api_event as harness_api_event


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An event whose body is ``body`` as JSON, or ``raw_body`` as it is."""
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return harness_api_event(method, path, body=text, query=query)


def create_order(stack: AwsStack, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.invoke("ApiFunction", api_event("POST", "/compute/ops/orders/v2", body))
    assert response["statusCode"] == 202, response
    return json.loads(response["body"])


def executions(stack: AwsStack) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=stack.ref("OrderWorkflow"))["executions"]


def scenes_request(name: str = "scenes order, direct download") -> dict[str, Any]:
    return load_event("planet/create_scenes_direct.json") | {"name": name}


# --- ApiFunction ------------------------------------------------------------------------------------------


def test_api_create_valid_order_records_queues_and_answers_202_queued(aws_stack: AwsStack) -> None:
    order = create_order(aws_stack, scenes_request())

    assert order["state"] == "queued"
    assert order["name"] == "scenes order, direct download"
    assert order["_links"]["_self"].endswith(f"/v1/compute/ops/orders/v2/{order['id']}")
    assert aws_stack.record(order["id"]).phase == "accepted"
    assert len(intake_event(aws_stack)["Records"]) == 1


def test_api_create_seed_malformed_json_answers_400_in_planet_shape(aws_stack: AwsStack) -> None:
    malformed = (EVENTS / "planet" / "create_scenes_gcs_clip_malformed.txt").read_text()
    response = aws_stack.invoke(
        "ApiFunction", api_event("POST", "/compute/ops/orders/v2", raw_body=malformed)
    )

    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert "not valid JSON" in body["general"][0]["message"]
    assert intake_event(aws_stack)["Records"] == []


def test_api_create_invalid_order_names_the_field(aws_stack: AwsStack) -> None:
    request = scenes_request() | {"products": []}
    response = aws_stack.invoke("ApiFunction", api_event("POST", "/compute/ops/orders/v2", request))

    assert response["statusCode"] == 400
    assert "products" in json.loads(response["body"])["field"]


@pytest.mark.parametrize("order_id", ["not-a-uuid", "3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10"])
def test_api_get_unknown_order_answers_planet_404(aws_stack: AwsStack, order_id: str) -> None:
    response = aws_stack.invoke("ApiFunction", api_event("GET", f"/compute/ops/orders/v2/{order_id}"))

    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"message": f"Could not load order ID: {order_id}."}


# --- SubmitFunction ---------------------------------------------------------------------------------------


def test_submit_accepted_order_creates_one_upstream_order_and_starts_its_workflow(
    aws_stack: AwsStack,
) -> None:
    order = create_order(aws_stack, scenes_request())
    event = intake_event(aws_stack)

    assert aws_stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}
    assert aws_stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}  # redelivered

    record = aws_stack.record(order["id"])
    assert record.phase == "submitted"
    upstream = aws_stack.planet_orders()
    assert len(upstream) == 1
    assert upstream[0]["name"].endswith(f"[gw:{order['id']}]")
    assert [e["name"] for e in executions(aws_stack)] == [order["id"]]


def test_submit_rate_limited_defers_message_and_keeps_nothing_upstream(aws_stack: AwsStack) -> None:
    order = create_order(aws_stack, scenes_request())
    aws_stack.planet_fault(op="create", kind="status", status=429, retry_after=7, times=1)
    event = intake_event(aws_stack)

    result = aws_stack.invoke("SubmitFunction", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert aws_stack.record(order["id"]).phase == "submitting"
    assert aws_stack.planet_orders() == []


def test_submit_after_ambiguous_failure_adopts_the_order_planet_already_has(aws_stack: AwsStack) -> None:
    order = create_order(aws_stack, scenes_request())
    event = intake_event(aws_stack)
    # The first POST reached Planet but its answer was lost: Planet has the order, we saw a 503.
    from order_core import wiring
    from order_core.services.submit import upstream_request

    wiring.orders_repo().claim_submission(order["id"], lease=timedelta(minutes=2))
    wiring.orders_repo().release_submission(order["id"])  # the attempt ended on the 503
    wiring.planet_client().create_order(upstream_request(aws_stack.record(order["id"])))

    assert aws_stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}

    assert len(aws_stack.planet_orders()) == 1
    assert aws_stack.record(order["id"]).upstream_order_id == aws_stack.planet_orders()[0]["id"]


def test_submit_invalid_external_message_ends_in_failed_order_with_hints(aws_stack: AwsStack) -> None:
    boto3.client("sqs").send_message(
        QueueUrl=aws_stack.ref("IntakeQueue"), MessageBody=json.dumps({"name": "no products"})
    )
    event = intake_event(aws_stack)

    assert aws_stack.invoke("SubmitFunction", event) == {"batchItemFailures": []}

    (execution,) = executions(aws_stack)
    record = aws_stack.record(execution["name"])
    assert record.rejected
    assert any("products" in hint for hint in record.error_hints)
    assert aws_stack.planet_orders() == []


# --- PollFunction and FinalizeFunction --------------------------------------------------------------------


def submitted_order(stack: AwsStack, request: dict[str, Any] | None = None) -> str:
    order = create_order(stack, request or scenes_request())
    stack.invoke("SubmitFunction", intake_event(stack))
    return str(order["id"])


def poll_until_final(stack: AwsStack, order_id: str) -> dict[str, Any]:
    attempt = 0
    for _ in range(100):
        result = stack.invoke("PollFunction", {"order_id": order_id, "tenant": "default", "attempt": attempt})
        if result["upstream_state"] in ("success", "partial", "failed", "cancelled"):
            return result
        attempt = result["attempt"]
        time.sleep(0.1)
    raise AssertionError("order never finished upstream")


def test_poll_rate_limited_waits_at_least_retry_after(aws_stack: AwsStack) -> None:
    order_id = submitted_order(aws_stack)
    aws_stack.planet_fault(op="get", kind="status", status=429, retry_after=30, times=1)

    result = aws_stack.invoke("PollFunction", {"order_id": order_id, "tenant": "default", "attempt": 0})

    assert result["wait_seconds"] >= 30
    assert result["attempt"] == 1


def test_land_and_finalize_success_lands_verified_files_and_publishes_one_event(aws_stack: AwsStack) -> None:
    order_id = submitted_order(aws_stack)
    assert poll_until_final(aws_stack, order_id)["upstream_state"] == "success"

    landing = aws_stack.invoke(
        "FinalizeFunction", {"action": "land", "order_id": order_id, "tenant": "default"}
    )
    final = {"action": "finalize", "order_id": order_id, "tenant": "default", "upstream_state": "success"}
    assert aws_stack.invoke("FinalizeFunction", final) == {"state": "success"}
    assert aws_stack.invoke("FinalizeFunction", final) == {"state": "success"}  # a retried task

    assert landing["complete"] is True
    s3 = boto3.client("s3")
    bucket = aws_stack.ref("ResultsBucket")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    prefix = f"orders/default/{order_id}/"
    assert f"{prefix}manifest.json" in keys and f"{prefix}delivery.json" in keys
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}manifest.json")["Body"].read())
    for entry in manifest["files"]:
        head = s3.head_object(Bucket=bucket, Key=prefix + entry["path"])
        assert head["ContentLength"] == entry["size"]
        assert head["Metadata"]["md5"] == entry["digests"]["md5"]
    events = aws_stack.completion_events()
    assert len(events) == 1
    assert events[0]["message"]["state"] == "success"
    assert events[0]["message"]["files"] == len(manifest["files"])
    assert events[0]["attributes"]["state"]["Value"] == "success"


def test_land_persistently_corrupted_file_fails_and_never_lands_it(aws_stack: AwsStack) -> None:
    order_id = submitted_order(aws_stack)
    poll_until_final(aws_stack, order_id)
    aws_stack.planet_fault(op="storage", kind="corrupt", times=10, path_contains="AnalyticMS.tif")

    result = aws_stack.invoke_raw(
        "FinalizeFunction", {"action": "land", "order_id": order_id, "tenant": "default"}
    )

    assert result.errored
    error = json.loads(result.payload)
    assert error["errorType"] == "ResultVerificationFailed"
    assert "AnalyticMS.tif" in error["errorMessage"] and "md5" in error["errorMessage"]
    listed = boto3.client("s3").list_objects_v2(Bucket=aws_stack.ref("ResultsBucket")).get("Contents", [])
    assert not any(o["Key"].endswith("AnalyticMS.tif") for o in listed)


# --- cancel, bulk cancel, stats, Idempotency-Key ---------------------------------------------------------


def api(
    stack: AwsStack,
    method: str,
    path: str,
    body: Any = None,
    *,
    tenant: str = "default",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    event = api_event(method, path, body)
    event["requestContext"]["authorizer"] = {"principalId": tenant, "tenant": tenant}
    event["headers"].update(headers or {})
    response = stack.invoke("ApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


def test_cancel_order_not_yet_submitted_is_never_submitted_and_ends_cancelled(aws_stack: AwsStack) -> None:
    order = create_order(aws_stack, scenes_request())

    status, body = api(aws_stack, "PUT", f"/compute/ops/orders/v2/{order['id']}")
    aws_stack.invoke("SubmitFunction", intake_event(aws_stack))  # the queued message arrives afterwards

    assert status == 200
    assert (body["state"], body["last_message"]) == ("cancelled", "Cancel success")
    assert aws_stack.planet_orders() == []
    assert aws_stack.record(order["id"]).cancel_requested
    assert [e["name"] for e in executions(aws_stack)] == [order["id"]]  # its workflow ends it, with its event


def test_cancel_order_queued_at_planet_cancels_it_upstream(aws_stack: AwsStack) -> None:
    requests_config(aws_stack, queued_seconds=3600)
    order_id = submitted_order(aws_stack)

    status, body = api(aws_stack, "PUT", f"/compute/ops/orders/v2/{order_id}")

    assert (status, body["state"]) == (200, "cancelled")
    assert aws_stack.planet_orders()[0]["state"] == "cancelled"


def test_cancel_order_running_at_planet_answers_409(aws_stack: AwsStack) -> None:
    requests_config(aws_stack, queued_seconds=0, running_seconds=3600)
    order_id = submitted_order(aws_stack)
    time.sleep(0.1)

    status, body = api(aws_stack, "PUT", f"/compute/ops/orders/v2/{order_id}")

    assert (status, body) == (409, {"message": "Order not in a cancellable state"})


def test_cancel_another_tenants_order_answers_404(aws_stack: AwsStack) -> None:
    order = create_order(aws_stack, scenes_request())

    status, _body = api(aws_stack, "PUT", f"/compute/ops/orders/v2/{order['id']}", tenant="other")
    get_status, _ = api(aws_stack, "GET", f"/compute/ops/orders/v2/{order['id']}", tenant="other")

    assert (status, get_status) == (404, 404)
    assert aws_stack.record(order["id"]).cancel_requested is False


def test_bulk_cancel_both_forms_report_planets_result_shape(aws_stack: AwsStack) -> None:
    first, second = (create_order(aws_stack, scenes_request(f"order {i}"))["id"] for i in (1, 2))
    unknown = "3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10"

    _, by_ids = api(aws_stack, "POST", "/compute/ops/bulk/orders/v2/cancel", {"order_ids": [first, unknown]})
    _, all_queued = api(aws_stack, "POST", "/compute/ops/bulk/orders/v2/cancel", {})

    assert by_ids == {
        "result": {
            "succeeded": {"count": 1},
            "failed": {
                "count": 1,
                "failures": [{"order_id": unknown, "message": f"No such order ID: {unknown}."}],
            },
        }
    }
    assert all_queued["result"]["succeeded"]["count"] == 1  # only the second was still queued
    assert aws_stack.record(second).cancel_requested


def test_stats_counts_only_the_callers_tenant_as_user_and_organization(aws_stack: AwsStack) -> None:
    create_order(aws_stack, scenes_request())
    for _ in range(2):
        api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request(), tenant="other")

    status, body = api(aws_stack, "GET", "/compute/ops/stats/orders/v2")
    _, theirs = api(aws_stack, "GET", "/compute/ops/stats/orders/v2", tenant="other")

    assert status == 200
    assert body == {
        "organization": {"queued_orders": 1, "running_orders": 0},
        "user": {"queued_orders": 1, "running_orders": 0},
    }
    assert theirs["organization"] == theirs["user"] == {"queued_orders": 2, "running_orders": 0}


def test_create_with_same_idempotency_key_three_times_is_one_order(aws_stack: AwsStack) -> None:
    headers = {"Idempotency-Key": "client-retry-1"}
    answers = [
        api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request(), headers=headers) for _ in range(3)
    ]

    assert {status for status, _ in answers} == {202}
    assert len({body["id"] for _, body in answers}) == 1
    assert len(intake_event(aws_stack)["Records"]) == 1


def test_create_reusing_idempotency_key_with_other_body_answers_422(aws_stack: AwsStack) -> None:
    headers = {"Idempotency-Key": "client-retry-2"}
    api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request("first"), headers=headers)

    status, body = api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request("second"), headers=headers)

    assert status == 422
    assert "different request body" in body["message"]


def test_idempotency_key_is_scoped_to_the_tenant(aws_stack: AwsStack) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    _, mine = api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request(), headers=headers)
    _, theirs = api(
        aws_stack, "POST", "/compute/ops/orders/v2", scenes_request(), headers=headers, tenant="other"
    )

    assert mine["id"] != theirs["id"]


def requests_config(stack: AwsStack, **config: Any) -> None:
    import requests

    requests.post(f"{stack.planet.url}/_fake/config", json=config, timeout=5).raise_for_status()


def test_list_filters_pages_and_shows_only_the_callers_orders(aws_stack: AwsStack) -> None:
    for i in range(3):
        create_order(aws_stack, scenes_request(f"batch {i}"))
    api(aws_stack, "POST", "/compute/ops/orders/v2", scenes_request("batch other"), tenant="other")
    event = api_event("GET", "/compute/ops/orders/v2", query={"name__contains": "batch", "page_size": "2"})
    event["requestContext"]["authorizer"] = {"tenant": "default"}

    first = json.loads(aws_stack.invoke("ApiFunction", event)["body"])
    next_query = {k: v[-1] for k, v in parse_qs(urlsplit(first["_links"]["next"]).query).items()}
    event2 = api_event("GET", "/compute/ops/orders/v2", query=next_query)
    event2["requestContext"]["authorizer"] = {"tenant": "default"}
    second = json.loads(aws_stack.invoke("ApiFunction", event2)["body"])

    names = [o["name"] for o in first["orders"] + second["orders"]]
    assert names == ["batch 2", "batch 1", "batch 0"]  # newest first, the caller's only
    assert "next" not in second["_links"]
    assert all(set(o["_links"]) == {"_self"} for o in first["orders"])


def test_list_invalid_filter_answers_400_naming_the_parameter(aws_stack: AwsStack) -> None:
    event = api_event("GET", "/compute/ops/orders/v2", query={"state": "sleeping"})
    event["requestContext"]["authorizer"] = {"tenant": "default"}

    response = aws_stack.invoke("ApiFunction", event)

    assert response["statusCode"] == 400
    assert "state" in json.loads(response["body"])["field"]


def test_delivery_credentials_are_forwarded_to_planet_but_never_shown_back(aws_stack: AwsStack) -> None:
    request = load_event("planet/create_scenes_gcs_clip.json")
    request["delivery"]["google_cloud_storage"]["credentials"] = "c2VjcmV0LXNlcnZpY2UtYWNjb3VudA=="

    created = create_order(aws_stack, request)
    aws_stack.invoke("SubmitFunction", intake_event(aws_stack))
    _, shown = api(aws_stack, "GET", f"/compute/ops/orders/v2/{created['id']}")

    for body in (created, shown):
        assert body["delivery"]["google_cloud_storage"]["credentials"] == "<redacted>"
        assert "c2VjcmV0" not in json.dumps(body)
    upstream = aws_stack.planet_orders()[0]["request"]
    assert upstream["delivery"]["google_cloud_storage"]["credentials"] == "c2VjcmV0LXNlcnZpY2UtYWNjb3VudA=="
