"""The error names shared by the Lambda functions and the state machine's Retry/Catch are an API.

Step Functions matches a Lambda's ``errorType``, the raised exception's class name (no module, no base
classes), against ``ErrorEquals``. A renamed exception or a typo in the definition silently turns a retry
into a failed order, or a permanent fault into endless retries.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ROOT
from order_core import errors

DEFINITION = ROOT / "statemachine" / "order_workflow.asl.json"
#: The Lambda service's own errors, raised by the Invoke integration (not by our code).
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
STATES_ERRORS = {"States.ALL", "States.Timeout", "States.TaskFailed", "States.HeartbeatTimeout"}


def _rules(states: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, state in states.items():
        for kind in ("Retry", "Catch"):
            for rule in state.get(kind, []):
                yield name, kind, rule
        for nested in [state.get("Iterator"), state.get("ItemProcessor"), *state.get("Branches", [])]:
            if nested:
                yield from _rules(nested["States"])


RULES = list(_rules(json.loads(DEFINITION.read_text())["States"]))
GATEWAY_ERRORS = {
    name: cls
    for name, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.GatewayError) and cls.__module__ == errors.__name__
}


def test_error_contract_every_name_in_the_definition_is_ours_or_a_builtin() -> None:
    names = {error for _state, _kind, rule in RULES for error in rule["ErrorEquals"]}

    unknown = names - LAMBDA_SERVICE_ERRORS - STATES_ERRORS - set(GATEWAY_ERRORS)

    assert RULES and not unknown, f"ErrorEquals names no exception in order_core.errors: {sorted(unknown)}"


@pytest.mark.parametrize("state", sorted({s for s, kind, _ in RULES if kind == "Retry"}))
def test_error_contract_retried_by_name_are_exactly_the_transient_faults(state: str) -> None:
    ours = {
        error
        for name, kind, rule in RULES
        if name == state and kind == "Retry"
        for error in rule["ErrorEquals"]
        if error in GATEWAY_ERRORS
    }

    assert ours <= {cls.__name__ for cls in errors.RETRIED_BY_WORKFLOW}


def test_error_contract_landing_retries_every_transient_fault() -> None:
    retried = {
        error
        for name, kind, rule in RULES
        if name == "LandResults" and kind == "Retry"
        for error in rule["ErrorEquals"]
    }

    assert {cls.__name__ for cls in errors.RETRIED_BY_WORKFLOW} <= retried


def test_error_contract_no_subclass_hides_from_a_retry_by_name() -> None:
    # Step Functions would see the subclass's own name and not retry it.
    for cls in GATEWAY_ERRORS.values():
        for retried in errors.RETRIED_BY_WORKFLOW:
            assert cls is retried or not issubclass(cls, retried), (
                f"{cls.__name__} subclasses {retried.__name__}"
            )


def test_error_contract_permanent_faults_are_never_retried_by_name() -> None:
    permanent = [errors.UpstreamClientError, errors.ResultVerificationFailed, errors.UnusableUpstreamOrder]
    names = {error for _state, kind, rule in RULES if kind == "Retry" for error in rule["ErrorEquals"]}

    for cls in GATEWAY_ERRORS.values():
        if issubclass(cls, tuple(permanent)):
            assert cls.__name__ not in names
