"""The local stack, started once per session as `python -m gateway_local up` in a subprocess.

A subprocess, not the in-process ``LocalStack``: the stack patches moto's Lambda runner and sets
process-global variables (``MOTO_PORT``, the functions' environment), which must not leak into the other
suites' ``mock_aws`` tests when everything runs in one pytest session.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from gateway_local.readiness import RunningStack
from order_checks import CompletionEvents
from stack_process import running_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("local-stack")) as stack:
        yield stack


@pytest.fixture(scope="session")
def completion_events(local_stack: RunningStack) -> CompletionEvents:
    """The stack's completion events by order id; one reader per stack, since reading deletes them."""
    return CompletionEvents(local_stack)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the stack's recent log to every failed e2e test: the cause is usually in there."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("local_stack")
    if report.failed and isinstance(stack, RunningStack):
        report.sections.append(("local stack log (tail)", stack.log_tail()))
    return report
