"""The chaos matrix: every upstream operation x every fault kind x one, several and all attempts, plus
duplicate deliveries and hostile producers. Each scenario says what a user expects (docs/decisions.md
"Chaos suite: what a user expects of each fault").

``CHAOS_FULL=1`` (``make chaos``) runs every scenario; without it ``make test`` runs a representative subset:
every operation, every fault kind and every duplicate/hostile family at least once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

FULL = os.environ.get("CHAOS_FULL", "").lower() in ("1", "true", "yes")

# What the fake sends for each fault kind (local/planet_fake/README.md "Fault injection").
KINDS: dict[str, dict[str, Any]] = {
    "5xx": {"kind": "status", "status": 503},
    "429+RA": {"kind": "status", "status": 429, "retry_after": 1},
    "429": {"kind": "status", "status": 429},
    "reset": {"kind": "reset"},
    "truncate": {"kind": "truncate"},
    "corrupt": {"kind": "corrupt"},
}
# An expired link: Planet answers 401 on the download link, a cloud bucket 403 on the signed URL.
EXPIRY = {
    "download": {
        "kind": "status",
        "status": 401,
        "message": "Download link has expired: GET the order again for a fresh link",
    },
    "storage": {"kind": "status", "status": 403, "message": "Signed URL has expired"},
}
#: "all" is bounded, but far beyond every retry budget of the stack the suite runs (SUBMIT_MAX_ATTEMPTS=4,
#: 4 range retries x 3 file restarts x 6 LandResults attempts, the 90 s polling deadline).
ALL = 1000
#: The landing operations' "every attempt" runs. Each costs about a minute of FinalizeFunction time (every
#: LandResults retry retries every range and restarts every file, with pauses), and the local stack runs
#: one invocation of a function at a time, as one Lambda sandbox would: all 21 would serialise for over
#: 20 minutes. These four cover each landing code path that ends an order: a status, a cut-off body, an
#: expired link and a body that never verifies.
LANDING_ALL = {"download/5xx/all", "storage/truncate/all", "storage/expiry/all", "manifest/corrupt/all"}


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str  # fault | duplicate | hostile
    op: str
    kind: str
    times: str  # one | several | all | -
    expect: str  # success | failed | cancelled | refused | answered; "a|b" when either is right
    hint: str | None = None  # regex a failed order's hints (or a refusal's reason) must match
    rules: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    timeout: float = 240.0

    @property
    def id(self) -> str:
        return self.name


def _count(op: str, kind: str, times: str) -> int:
    if times == "one":
        return 1
    if times == "several":
        # A create or a reconciliation list waits 10-40 s of SQS backoff per retry; two keep the run short.
        # A corrupted file is fetched again twice (3 attempts, docs/decisions.md "Failures"): three
        # corruptions of the same file in a row are that budget, so "several" stays below it.
        return 2 if op in ("create", "list") or kind == "corrupt" else 3
    return ALL


def _fault(op: str, kind: str, times: str) -> Scenario:
    spec = EXPIRY["storage" if op == "manifest" else op] if kind == "expiry" else KINDS[kind]
    rule = {"op": op, **spec, "times": _count(op, kind, times)}
    expect, hint, timeout = "success", None, 240.0
    if times == "all":
        timeout = 300.0
        if op == "create" and kind in ("truncate", "corrupt"):
            pass  # Planet created the order every time; reconciliation adopts the first one
        elif op == "create":
            expect, hint = "failed", r"(?i)planet|attempt|rate"
        elif op in ("get", "list") and kind == "corrupt":
            # One flipped byte in the middle of JSON often leaves it readable (a letter in a string): the
            # gateway cannot tell, and need not, as long as the state it reads is right.
            expect, hint = "success|failed", r"(?i)deadline|planet|attempt|reconcil"
        elif op == "get":
            expect, hint = "failed", r"(?i)deadline"
        elif op in ("download", "storage", "manifest"):
            expect, hint = "failed", r"(?i)manifest|\.tif|\.xml|\.json|download|file"
        elif op == "list":
            expect, hint = "failed", r"(?i)planet|attempt|reconcil|rate"
        elif op == "cancel" and kind in ("truncate", "corrupt"):
            expect = "cancelled"  # Planet cancelled it; only its answer was damaged
        elif op == "cancel":
            expect = "success"  # the cancel never reached Planet: the client saw every refusal
    if op == "cancel" and times != "all":
        expect = "cancelled"
    name = f"{op}/{kind}/{times}"
    if name in LANDING_ALL:
        timeout = 600.0  # six LandResults retries, up to 275 s of Step Functions backoff, plus the landings
    return Scenario(name, "fault", op, kind, times, expect, hint, (rule,), timeout=timeout)


def fault_matrix() -> list[Scenario]:
    scenarios = []
    for op in ("create", "get", "list", "cancel", "download", "storage", "manifest"):
        kinds = [*KINDS, "expiry"] if op in ("download", "storage", "manifest") else list(KINDS)
        for kind in kinds:
            for times in ("one", "several", "all"):
                scenario = _fault(op, kind, times)
                if (
                    times != "all"
                    or op in ("create", "get", "list", "cancel")
                    or scenario.name in LANDING_ALL
                ):
                    scenarios.append(scenario)
    return scenarios


def permanent_faults() -> list[Scenario]:
    return [
        Scenario(
            "create/400/one",
            "fault",
            "create",
            "400",
            "one",
            "failed",
            r"(?i)planet refused|400|injected",
            ({"op": "create", "kind": "status", "status": 400, "message": "Injected: bad bundle"},),
        ),
        Scenario(
            "get/404/one",
            "fault",
            "get",
            "404",
            "one",
            "failed",
            r"(?i)404|not found|could not load|injected",
            ({"op": "get", "kind": "status", "status": 404, "message": "Injected: no such order"},),
        ),
        Scenario(
            "upstream/failed",
            "fault",
            "get",
            "planet-failed",
            "-",
            "failed",
            r"(?i)fail",
            extra={"item_ids": ["20220304_fail_1"]},
        ),
    ]


def duplicates() -> list[Scenario]:
    return [
        Scenario("dup/sqs-message", "duplicate", "create", "sqs twice", "-", "success"),
        Scenario("dup/http-idempotency-key", "duplicate", "create", "http twice", "-", "success"),
        Scenario("dup/accepted-message", "duplicate", "submit", "intake twice", "-", "success"),
        Scenario("dup/workflow", "duplicate", "workflow", "started twice", "-", "success"),
        Scenario(
            "dup/lambdas-after-done", "duplicate", "poll+land+finalize", "invoked again", "-", "success"
        ),
        Scenario("dup/sqs-key-other-body", "duplicate", "create", "same key, other body", "-", "success"),
    ]


HOSTILE_TENANTS = {
    "slash": "default/11111111-1111-1111-1111-111111111111",
    "dotdot": "../..",
    "empty": "",
    "unicode": "tenänt-\u202e",
    "long": "a" * 500,
}


def hostile() -> list[Scenario]:
    scenarios = [
        Scenario(f"hostile/sqs-tenant-{name}", "hostile", "sqs", "tenant", "-", "refused", r"(?i)tenant")
        for name in HOSTILE_TENANTS
    ]
    scenarios += [
        Scenario(f"hostile/sqs-body-{name}", "hostile", "sqs", "body", "-", "refused")
        for name in ("not-json", "huge", "surrogate", "not-an-object")
    ]
    scenarios += [
        Scenario(f"hostile/api-{name}", "hostile", "api", name, "-", "answered")
        for name in (
            "page_size-huge",
            "page_size-negative",
            "page_marker-garbage",
            "page_marker-crafted",
            "page_marker-surrogate",
            "name-surrogate",
            "body-not-json",
        )
    ]
    return scenarios


# One scenario per operation and per fault kind at least, every family once: what `make test` runs.
SUBSET = {
    "create/5xx/one",
    "create/reset/several",
    "create/truncate/one",
    "create/400/one",
    "get/429+RA/several",
    "get/corrupt/one",
    "list/5xx/one",
    "cancel/5xx/one",
    "download/expiry/one",
    "download/429/one",
    "storage/truncate/several",
    "storage/corrupt/one",
    "manifest/429+RA/one",
    "manifest/corrupt/one",
    "upstream/failed",
    "dup/sqs-message",
    "dup/http-idempotency-key",
    "dup/accepted-message",
    "dup/workflow",
    "dup/lambdas-after-done",
    "dup/sqs-key-other-body",
    "hostile/sqs-tenant-slash",
    "hostile/sqs-tenant-dotdot",
    "hostile/sqs-body-not-json",
    "hostile/api-page_size-huge",
    "hostile/api-page_marker-crafted",
    "hostile/api-name-surrogate",
}


def all_scenarios() -> list[Scenario]:
    return [*fault_matrix(), *permanent_faults(), *duplicates(), *hostile()]


def selected() -> list[Scenario]:
    """The full matrix, the subset, or ``CHAOS_ONLY`` (comma-separated names: rerun what failed)."""
    everything = all_scenarios()
    only = [name for name in os.environ.get("CHAOS_ONLY", "").split(",") if name]
    if only:
        unknown = set(only) - {s.name for s in everything}
        if unknown:
            raise ValueError(f"CHAOS_ONLY names no scenario: {sorted(unknown)}")
        return [s for s in everything if s.name in only]
    return everything if FULL else [s for s in everything if s.name in SUBSET]
