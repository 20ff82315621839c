"""Drive one scenario against a running local stack and judge it from outside, as a user would.

Every check reads what a user can read: the API, the completion events (the SNS topic's subscribed queue),
the results bucket, the intake dead-letter queue, the Step Functions executions, the stack's log, and the
fake Planet's own record of what it was asked (``/_fake/orders``, ``/_fake/requests``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests
from chaos_scenarios import HOSTILE_TENANTS, Scenario
from gateway_local.readiness import RunningStack
from order_core.services.submit import external_order_id

TERMINAL = ("success", "partial", "failed", "cancelled")
#: How long the chaos client keeps cancelling; the stack keeps an order queued at Planet 20 s (conftest.py).
CANCEL_PATIENCE_SECONDS = 30.0
SCENES = {"item_type": "PSScene", "product_bundle": "analytic_udm2"}
STORAGE_SIGNATURE = re.compile(r"[?&]signature=[0-9a-f]{16,}")
JWT_IN_URL = re.compile(r"token=eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
PRESIGNED = re.compile(r"X-Amz-Signature=|X-Amz-Credential=|Signature=[A-Za-z0-9%]{20,}")


@dataclass
class Outcome:
    """What a scenario saw, and which invariants it broke."""

    scenario: Scenario
    order_ids: list[str] = field(default_factory=list)
    state: str = "-"
    hints: list[str] = field(default_factory=list)
    faults_fired: int = 0
    responses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    upstream_ids: list[str] = field(default_factory=list)
    landed_before: dict[str, str] = field(default_factory=dict)  # key -> ETag+LastModified, for duplicates
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def violate(self, text: str) -> None:
        self.violations.append(text)


class Collector(threading.Thread):
    """Drains a queue into memory, keyed by whatever ``key`` finds in each message."""

    def __init__(self, stack: RunningStack, url: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._sqs = stack.client("sqs")
        self._url = url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    MessageAttributeNames=["All"],
                    AttributeNames=["All"],
                )
            except Exception:
                time.sleep(0.5)
                continue
            for message in got.get("Messages", []):
                with self._lock:
                    self.messages.append(message)
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def stop(self) -> None:
        self._stop.set()


class Chaos:
    """One running stack, shared by every scenario; each scenario only touches its own orders."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.api = stack.api_url
        self.headers = {"Authorization": f"api-key {stack.outputs['api_key']}"}
        self.fake = stack.outputs["planet_url"].split("/compute/ops")[0] + "/_fake"
        self.bucket = stack.outputs["stack_outputs"]["ResultsBucketName"]
        self.prefix = "orders"
        self.intake_url = stack.resource("IntakeQueue")["Ref"]
        self.dlq_url = stack.resource("IntakeDeadLetterQueue")["Ref"]
        self.events = Collector(stack, stack.outputs["completion_events_queue_url"], "chaos-events")
        self.dead_letters = Collector(stack, self.dlq_url, "chaos-dlq")
        self.events.start()
        self.dead_letters.start()
        self._s3 = stack.client("s3")
        self._sqs = stack.client("sqs")
        self._lambda = stack.client("lambda")
        self._sfn = stack.client("stepfunctions")
        self.known_orders: set[str] = set()
        self.responses: list[str] = []  # every body our API answered, for the secret scan
        self._lock = threading.Lock()

    # --- talking to the gateway and the fake -------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = requests.request(method, f"{self.api}{path}", headers=headers, timeout=60, **kwargs)
        with self._lock:
            self.responses.append(response.text)
        return response

    def add_fault(self, rule: dict[str, Any]) -> None:
        response = requests.post(f"{self.fake}/faults", json=rule, timeout=10)
        response.raise_for_status()

    def upstream_orders(self, marker: str) -> list[dict[str, Any]]:
        orders = requests.get(f"{self.fake}/orders", timeout=30).json()["orders"]
        return [o for o in orders if marker in o["name"]]

    def wait_upstream(self, name: str, timeout: float = 120) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.upstream_orders(name)
            if found:
                return str(found[0]["id"])
            time.sleep(0.2)
        return None

    def fired_count(self, scenario: Scenario, scope: set[str]) -> int:
        """How many of the scenario's injected faults hit a request (requested minus still pending)."""
        requested = sum(int(rule.get("times", 1)) for rule in scenario.rules)
        pending = requests.get(f"{self.fake}/faults", timeout=30).json()["faults"]
        left = sum(
            rule["times"]
            for rule in pending
            if scope & {rule.get("body_contains"), rule.get("query_contains"), rule.get("order_id")}
            and rule.get("op") == ("storage" if scenario.op == "manifest" else scenario.op)
        )
        return max(0, requested - left)

    def create_http(
        self, name: str, item_ids: list[str] | None = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        body = {
            "name": name,
            "source_type": "scenes",
            "products": [{**SCENES, "item_ids": item_ids or ["20220304_093300_37_2430"]}],
        }
        return self.call("POST", "/orders/v2", json=body, headers=headers or {})

    def send_sqs(self, body: str, **attributes: str) -> str:
        message_attributes = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
        sent = self._sqs.send_message(
            QueueUrl=self.intake_url, MessageBody=body, MessageAttributes=message_attributes
        )
        return str(sent["MessageId"])

    def get(self, order_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/orders/v2/{order_id}")
        return (
            dict(response.json())
            if response.status_code == 200
            else {"state": f"HTTP {response.status_code}"}
        )

    def wait_terminal(self, order_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        order: dict[str, Any] = {}
        while time.monotonic() < deadline:
            order = self.get(order_id)
            if order.get("state") in TERMINAL:
                return order
            time.sleep(2)
        return order

    def record(self, order_id: str) -> dict[str, Any] | None:
        table = self.stack.resource("OrdersTable")["Ref"]
        item = self.stack.client("dynamodb").get_item(TableName=table, Key={"order_id": {"S": order_id}})
        return item.get("Item")

    def invoke(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self._lambda.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
        body = answer["Payload"].read()
        return {"error": answer.get("FunctionError"), "payload": body.decode(errors="replace")[:300]}

    def start_workflow(self, order_id: str, tenant: str, submitted: bool) -> None:
        self._sfn.start_execution(
            stateMachineArn=self.stack.resource("OrderWorkflow")["Ref"],
            name=f"chaos-dup-{uuid.uuid4().hex[:12]}",
            input=json.dumps({"order_id": order_id, "tenant": tenant, "submitted": submitted}),
        )

    def workflow_inputs(self) -> list[str]:
        arn = self.stack.resource("OrderWorkflow")["Ref"]
        inputs = []
        for page in self._sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                described = self._sfn.describe_execution(executionArn=execution["executionArn"])
                inputs.append(described.get("input", ""))
        return inputs

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        found = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = item
        return found

    def read_object(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def events_for(self, order_id: str) -> list[dict[str, Any]]:
        found = []
        for message in self.events.snapshot():
            event = json.loads(json.loads(message["Body"])["Message"])
            if event.get("order_id") == order_id:
                found.append(event)
        return found

    def refusals_for(self, chaos_id: str) -> list[dict[str, Any]]:
        found = []
        for message in self.dead_letters.snapshot():
            attributes = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
            if attributes.get("chaos_id") == chaos_id:
                found.append({"body": message["Body"][:80], **attributes})
        return found

    def warm_up(self) -> None:
        """Load every function once, one after another, before the scenarios hit them all at once.

        The local runtime imports a function's handler on its first invocation; two functions importing
        for the first time in two threads can see each other's half-initialised modules (seen: ApiFunction
        answering 502 with Runtime.ImportModuleError). Lambda runs each function in its own process, so
        that is the local stack's problem, not a fault a scenario injects."""
        for function in (
            "AuthorizerFunction",
            "ApiFunction",
            "SubmitFunction",
            "PollFunction",
            "FinalizeFunction",
        ):
            self.invoke(function, {})

    # --- running a scenario ------------------------------------------------------------------------------

    def run(self, scenario: Scenario) -> Outcome:
        outcome = Outcome(scenario)
        started = time.monotonic()
        try:
            if scenario.family == "fault":
                self._run_fault(scenario, outcome)
            elif scenario.family == "duplicate":
                self._run_duplicate(scenario, outcome)
            else:
                self._run_hostile(scenario, outcome)
        except Exception as exc:
            outcome.violate(f"driver error: {type(exc).__name__}: {exc}")
        outcome.seconds = time.monotonic() - started
        with self._lock:
            self.known_orders.update(outcome.order_ids)
        return outcome

    def _name(self, scenario: Scenario) -> str:
        return f"chaos {scenario.name} {uuid.uuid4().hex[:10]}"

    def _rules(self, scenario: Scenario, **scope: str) -> None:
        for rule in scenario.rules:
            rule = dict(rule)
            if scenario.op == "manifest":
                rule.update(op="storage", file_contains="manifest.json")
            elif scenario.op in ("download", "storage"):
                rule.update(file_contains="_3B_")  # the imagery files; manifest.json has its own scenarios
            self.add_fault({**rule, **scope})

    def _run_fault(self, scenario: Scenario, outcome: Outcome) -> None:
        name = self._name(scenario)
        if scenario.op == "create":
            self._rules(scenario, body_contains=name)
        created = self.create_http(name, scenario.extra.get("item_ids"))
        if created.status_code != 202:
            outcome.violate(f"create answered {created.status_code}: {created.text[:200]}")
            return
        order_id = created.json()["id"]
        outcome.order_ids.append(order_id)
        if scenario.op == "list":
            # An ambiguous POST (the response cut off after Planet created the order) makes the next attempt
            # reconcile by listing; the list is what is faulted.
            self.add_fault({"op": "create", "kind": "truncate", "body_contains": name})
            self._rules(scenario, query_contains=f"[gw:{order_id}]")
        if scenario.op in ("get", "cancel", "download", "storage", "manifest"):
            upstream = self.wait_upstream(name)
            if upstream is None:
                outcome.violate("never submitted to Planet")
                return
            outcome.upstream_ids.append(upstream)
            if scenario.rules:
                self._rules(scenario, order_id=upstream)
            if scenario.op == "cancel":
                self._cancel_like_a_client(order_id, outcome)
        order = self.wait_terminal(order_id, scenario.timeout)
        outcome.state = str(order.get("state"))
        outcome.hints = list(order.get("error_hints") or [])
        outcome.faults_fired = self.fired_count(scenario, {name, f"[gw:{order_id}]", *outcome.upstream_ids})

    def _cancel_like_a_client(self, order_id: str, outcome: Outcome) -> None:
        """PUT until it works or Planet has started the order (409), honouring Retry-After, for at most
        ``CANCEL_PATIENCE_SECONDS`` (a patient script would). Patience is counted in time, not attempts: a
        429 that another order met holds the whole deployment's cancels (services/pacing.py), and the
        deferrals it causes are answers too."""
        give_up = time.monotonic() + CANCEL_PATIENCE_SECONDS
        while time.monotonic() < give_up:
            response = self.call("PUT", f"/orders/v2/{order_id}")
            outcome.responses.append(str(response.status_code))
            if response.status_code in (200, 409):
                return
            if response.status_code >= 500 and response.status_code != 503:
                outcome.violate(f"cancel answered {response.status_code}: {response.text[:120]}")
            if "message" not in response.text:
                outcome.violate(f"cancel answered {response.status_code} without a message")
            time.sleep(float(response.headers.get("Retry-After", "0.3") or 0.3))

    # --- duplicates ----------------------------------------------------------------------------------------

    def _run_duplicate(self, scenario: Scenario, outcome: Outcome) -> None:
        name = self._name(scenario)
        body = json.dumps(
            {
                "name": name,
                "source_type": "scenes",
                "products": [{**SCENES, "item_ids": ["20220304_093300_37_2430"]}],
            }
        )
        if scenario.name == "dup/sqs-message":
            key = uuid.uuid4().hex
            self.send_sqs(body, tenant="default", idempotency_key=key)
            time.sleep(0.5)
            self.send_sqs(body, tenant="default", idempotency_key=key)
            order_id = external_order_id("default", key)
        elif scenario.name == "dup/sqs-key-other-body":
            key, chaos_id = uuid.uuid4().hex, uuid.uuid4().hex
            self.send_sqs(body, tenant="default", idempotency_key=key)
            order_id = external_order_id("default", key)
            other = json.loads(body)
            other["products"][0]["item_ids"] = ["20220304_093300_37_9999"]
            time.sleep(1)
            self.send_sqs(json.dumps(other), tenant="default", idempotency_key=key, chaos_id=chaos_id)
        elif scenario.name == "dup/http-idempotency-key":
            key = uuid.uuid4().hex
            first = self.create_http(name, headers={"Idempotency-Key": key})
            second = self.create_http(name, headers={"Idempotency-Key": key})
            order_id = first.json().get("id", "")
            if second.json().get("id") != order_id:
                outcome.violate(f"the same Idempotency-Key gave two orders ({second.status_code})")
        else:
            created = self.create_http(name)
            order_id = created.json()["id"]
        outcome.order_ids.append(order_id)
        if scenario.name == "dup/accepted-message":
            self.wait_upstream(name)
            accepted = json.dumps({"order_id": order_id, "tenant": "default"})
            for _ in range(2):
                self.send_sqs(accepted, message_type="gateway.order.accepted")
        if scenario.name == "dup/workflow":
            self.wait_upstream(name)
            self.start_workflow(order_id, "default", submitted=True)
        order = self.wait_terminal(order_id, scenario.timeout)
        outcome.state = str(order.get("state"))
        outcome.hints = list(order.get("error_hints") or [])
        if scenario.name == "dup/sqs-key-other-body":
            outcome.refusals = self.refusals_for(chaos_id)
            if not outcome.refusals:
                outcome.violate("a second body under the same idempotency_key was not refused to the DLQ")
            elif not any(r.get("refusal_reason") for r in outcome.refusals):
                outcome.violate("the refused message has no refusal_reason attribute")
        if scenario.name in ("dup/lambdas-after-done", "dup/accepted-message", "dup/workflow"):
            self._again_after_done(order_id, outcome)

    def _again_after_done(self, order_id: str, outcome: Outcome) -> None:
        """The terminal order's steps delivered again: nothing may change, nothing is published twice."""
        folder = f"{self.prefix}/default/{order_id}/"
        before = {k: f"{v['ETag']}{v['LastModified']}" for k, v in self.objects(folder).items()}
        order = {"order_id": order_id, "tenant": "default"}
        self.invoke("PollFunction", {**order, "attempt": 0})
        self.invoke("FinalizeFunction", {"action": "land", **order})
        for _ in range(2):
            self.invoke(
                "FinalizeFunction",
                {
                    "action": "finalize",
                    **order,
                    "upstream_state": "success",
                    "deadline_passed": False,
                    "error": None,
                },
            )
        self.send_sqs(json.dumps(order), message_type="gateway.order.accepted")
        time.sleep(3)
        after = {k: f"{v['ETag']}{v['LastModified']}" for k, v in self.objects(folder).items()}
        changed = sorted(k for k in before if k in after and after[k] != before[k])
        records = [k.rsplit("/", 1)[-1] for k in changed if k.endswith(("/manifest.json", "/delivery.json"))]
        if records:
            outcome.notes.append(f"rewrote {', '.join(records)}")
        landed_again = [k for k in changed if not k.endswith(("/manifest.json", "/delivery.json"))]
        if landed_again:
            outcome.violate(f"landed again after done: {landed_again[:3]}")
        if set(after) != set(before):
            outcome.violate(
                f"objects appeared or vanished after done: {sorted(set(after) ^ set(before))[:3]}"
            )
        state = self.get(order_id).get("state")
        if state != outcome.state:
            outcome.violate(f"state changed from {outcome.state} to {state} after the duplicates")

    # --- hostile producers ---------------------------------------------------------------------------------

    def _run_hostile(self, scenario: Scenario, outcome: Outcome) -> None:
        if scenario.op == "sqs":
            self._hostile_sqs(scenario, outcome)
        else:
            self._hostile_api(scenario, outcome)

    def _hostile_sqs(self, scenario: Scenario, outcome: Outcome) -> None:
        name = self._name(scenario)
        chaos_id, key = uuid.uuid4().hex, uuid.uuid4().hex
        good = {
            "name": name,
            "source_type": "scenes",
            "products": [{**SCENES, "item_ids": ["20220304_093300_37_2430"]}],
        }
        variant = (
            scenario.name.rsplit("-", 1)[-1]
            if "tenant" in scenario.name
            else scenario.name.split("body-")[-1]
        )
        tenant = HOSTILE_TENANTS[variant] if scenario.kind == "tenant" else "default"
        body = {
            "not-json": "this is {not json",
            "huge": json.dumps({**good, "name": name + " " + "x" * 250_000}),
            "surrogate": json.dumps(good)[:-1] + ', "metadata": {"note": "\\ud800"}}',
            "not-an-object": json.dumps([good]),
        }.get(variant, json.dumps(good))
        try:
            self.send_sqs(body, tenant=tenant, idempotency_key=key, chaos_id=chaos_id)
        except Exception as exc:
            outcome.state = "refused by SQS"
            outcome.notes.append(f"{type(exc).__name__}")
            return
        order_ids = {external_order_id(tenant, key)} if tenant else {external_order_id("default", key)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            outcome.refusals = self.refusals_for(chaos_id)
            if outcome.refusals:
                outcome.state = "refused to DLQ"
                break
            records = [r for r in (self.record(o) for o in order_ids) if r]
            if records:
                order_id = records[0]["order_id"]["S"]
                outcome.order_ids.append(order_id)
                recorded_tenant = records[0]["tenant"]["S"]
                order = self._wait_record_terminal(order_id, deadline)
                outcome.state = order.get("state", {}).get("S", "?") if order else "?"
                outcome.hints = [h.get("S", "") for h in (order or {}).get("error_hints", {}).get("L", [])]
                if scenario.kind == "tenant":
                    outcome.violate(f"accepted under tenant {recorded_tenant[:40]!r} instead of refused")
                elif outcome.state != "failed":
                    outcome.violate(f"hostile body accepted and ended {outcome.state}, not refused")
                break
            time.sleep(1)
        else:
            outcome.state = "vanished"
            outcome.violate("neither refused to the DLQ nor recorded as an order within 60 s")
        if outcome.refusals and not any(r.get("refusal_reason") for r in outcome.refusals):
            outcome.violate("the refused message has no refusal_reason attribute")
        if outcome.refusals:
            outcome.hints = [str(r.get("refusal_reason")) for r in outcome.refusals]

    def _wait_record_terminal(self, order_id: str, deadline: float) -> dict[str, Any] | None:
        record = None
        while time.monotonic() < deadline + 120:
            record = self.record(order_id)
            if record and record.get("state", {}).get("S") in TERMINAL:
                return record
            time.sleep(1)
        return record

    def _hostile_api(self, scenario: Scenario, outcome: Outcome) -> None:
        marker = base64.urlsafe_b64encode(
            json.dumps({"created_on": "x" * 3000, "order_id": ["'"]}).encode()
        ).decode()
        requests_to_send: dict[str, tuple[str, str, dict[str, Any]]] = {
            "page_size-huge": ("GET", "/orders/v2", {"params": {"page_size": "9" * 40}}),
            "page_size-negative": ("GET", "/orders/v2", {"params": {"page_size": "-1"}}),
            "page_marker-garbage": ("GET", "/orders/v2", {"params": {"page_marker": "!!!%%%"}}),
            "page_marker-crafted": ("GET", "/orders/v2", {"params": {"page_marker": marker}}),
            "page_marker-surrogate": ("GET", "/orders/v2?page_marker=%ED%A0%80", {}),
            "name-surrogate": (
                "POST",
                "/orders/v2",
                {
                    "data": '{"name": "bad \\ud800 name", "source_type": "scenes", "products": '
                    '[{"item_type": "PSScene", "product_bundle": "analytic_udm2", '
                    '"item_ids": ["20220304_093300_37_2430"]}]}',
                    "headers": {"Content-Type": "application/json"},
                },
            ),
            "body-not-json": (
                "POST",
                "/orders/v2",
                {"data": b"\xff\xfe{", "headers": {"Content-Type": "application/json"}},
            ),
        }
        method, path, kwargs = requests_to_send[scenario.kind]
        response = self.call(method, path, **kwargs)
        outcome.state = f"HTTP {response.status_code}"
        outcome.responses.append(response.text[:200])
        if response.status_code >= 500:
            outcome.violate(f"{response.status_code} on hostile input: {response.text[:120]}")
            return
        try:
            body = response.json()
        except ValueError:
            outcome.violate("answer is not JSON")
            return
        if response.status_code >= 400 and not ("message" in body or "general" in body):
            outcome.violate(f"{response.status_code} without Planet's error shape")
        if response.status_code == 202:
            order_id = body["id"]
            outcome.order_ids.append(order_id)
            order = self.wait_terminal(order_id, 180)
            outcome.state += f" -> {order.get('state')}"


# --- invariants, judged after every scenario ran ---------------------------------------------------------


def judge(chaos: Chaos, outcome: Outcome, secrets: list[str]) -> None:
    scenario = outcome.scenario
    expected = scenario.expect.split("|")
    if set(expected) <= {"success", "failed", "cancelled"}:
        if outcome.state not in expected:
            turned = scenario.expect == "success" and outcome.state == "failed"
            kind = "transient fault turned into" if turned else "ended"
            outcome.violate(f"expected {scenario.expect}, {kind} {outcome.state}: {outcome.hints[:2]}")
        elif (
            outcome.state == "failed"
            and scenario.hint
            and not any(re.search(scenario.hint, hint) for hint in outcome.hints)
        ):
            outcome.violate(f"failed without a hint naming the cause: {outcome.hints[:2]}")
    for order_id in outcome.order_ids:
        _judge_order(chaos, outcome, order_id)
    for text in [*outcome.responses]:
        for secret in secrets:
            if secret in text:
                outcome.violate("a secret in an API response")


def _judge_order(chaos: Chaos, outcome: Outcome, order_id: str) -> None:
    order = chaos.get(order_id)
    state = order.get("state")
    events = chaos.events_for(order_id)
    record = chaos.record(order_id)
    tenant = record["tenant"]["S"] if record else "default"
    if state in TERMINAL or record is not None:
        if state not in TERMINAL and (record or {}).get("state", {}).get("S") not in TERMINAL:
            outcome.violate(f"{order_id[:8]} not terminal ({state})")
        if len(events) != 1:
            outcome.violate(f"{order_id[:8]} has {len(events)} completion events")
        elif events[0]["state"] != (state if state in TERMINAL else record["state"]["S"]):  # type: ignore[index]
            outcome.violate(f"{order_id[:8]} event says {events[0]['state']}, the API {state}")
    upstream = chaos.upstream_orders(f"[gw:{order_id}]")
    outcome.upstream_ids = [u["id"] for u in upstream]
    if len(upstream) > 1:
        outcome.violate(f"{order_id[:8]} created {len(upstream)} times at Planet")
    if state == "success" and len(upstream) != 1:
        outcome.violate(f"{order_id[:8]} success with {len(upstream)} upstream orders")
    folder = f"{chaos.prefix}/{tenant}/{order_id}/"
    landed = chaos.objects(folder)
    if state == "success":
        _judge_landed(chaos, outcome, folder, landed, order)


def _judge_landed(
    chaos: Chaos, outcome: Outcome, folder: str, landed: dict[str, dict[str, Any]], order: dict[str, Any]
) -> None:
    """Every file of the manifest is in the bucket and, fetched through the order's own links as a client
    would, has the manifest's size and md5."""
    if folder + "manifest.json" not in landed:
        outcome.violate(
            f"success without manifest.json landed (last_message {order.get('last_message')!r}, "
            f"{len(order.get('_links', {}).get('results') or [])} result link(s), "
            f"{len(landed)} object(s) in the folder)"
        )
        return
    manifest = json.loads(chaos.read_object(folder + "manifest.json"))
    links = {
        r["name"].split("/", 1)[1]: r.get("location") for r in order.get("_links", {}).get("results", [])
    }
    for entry in manifest["files"]:
        key = folder + entry["path"]
        if key not in landed:
            outcome.violate(f"success but {entry['path']} is missing")
            continue
        location = links.get(entry["path"])
        if not location:
            outcome.violate(f"success but {entry['path']} has no download link")
            continue
        body = requests.get(location, timeout=60).content  # our link -> 302 -> the landed copy
        if len(body) != entry["size"] or hashlib.md5(body).hexdigest() != entry["digests"]["md5"]:  # noqa: S324
            outcome.violate(f"success but {entry['path']} differs from the manifest")


def stray_objects(chaos: Chaos) -> list[str]:
    """Keys outside {prefix}/{tenant}/{order id}/ of an order the run made (and the landing checkpoints)."""
    stray = []
    for key in chaos.objects():
        parts = key.split("/")
        if parts[0] == "_landing-state":
            continue
        if (
            len(parts) < 4
            or parts[0] != chaos.prefix
            or parts[2] not in chaos.known_orders
            or parts[1] != "default"
        ):
            stray.append(key)
    return stray


def secret_leaks(chaos: Chaos, secrets: list[str], banner_shows: str) -> dict[str, list[str]]:
    """Where a secret (or a signed link: a download token, a storage signature, a presigned S3 URL) shows.

    ``banner_shows`` is the local key that the console banner of `gateway_local up` prints on purpose
    (README: the developer's key for tenant default); every other line, and the banner otherwise, is held
    to the same rule as CloudWatch would be."""
    patterns = [re.compile(re.escape(s)) for s in secrets] + [STORAGE_SIGNATURE, JWT_IN_URL, PRESIGNED]
    log = chaos.stack.log_path.read_text(errors="replace").splitlines() if chaos.stack.log_path else []
    ready = next((i for i, line in enumerate(log) if line.startswith("Local stack ready")), -1)
    log = [line.replace(banner_shows, "<banner key>") if i < ready else line for i, line in enumerate(log)]
    events = [m["Body"] for m in chaos.events.snapshot()]
    sources = {"log": log, "events": events, "workflow inputs": chaos.workflow_inputs()}
    leaks: dict[str, list[str]] = defaultdict(list)
    for where, lines in sources.items():
        for line in lines:
            for pattern in patterns:
                if match := pattern.search(line):
                    leaks[where].append(_shown(line, match))
                    break
    planet_origin = chaos.stack.outputs["planet_url"].split("/compute/ops")[0]
    for text in chaos.responses:
        if any(s in text for s in secrets) or STORAGE_SIGNATURE.search(text) or planet_origin in text:
            leaks["API responses"].append(text[:120])
    return dict(leaks)


def _shown(line: str, match: re.Match[str]) -> str:
    """The leaking line around the match, with the secret itself cut short."""
    start = max(0, match.start() - 60)
    return (line[start : match.start()] + match.group(0)[:12] + "…")[-110:]
