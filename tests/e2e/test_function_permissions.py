"""Each local function has only the permissions its template entry gives it (moto's IAM enforces them).

The same request against two stacks: the template as it is, and a copy with one policy line of ApiFunction
deleted. The function that lost the permission fails; the authorizer, which kept its own, still works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from gateway_local.readiness import PROJECT_ROOT
from stack_process import running_stack

API_ORDERS_POLICY = "        - DynamoDBCrudPolicy: { TableName: !Ref OrdersTable }\n"


def _project_copy(root: Path, *, drop_from: str | None) -> Path:
    """The project with its template copied (optionally one policy line gone from one function)."""
    root.mkdir()
    for name in ("functions", "shared", "statemachine", "docs"):
        (root / name).symlink_to(PROJECT_ROOT / name)
    template = (PROJECT_ROOT / "template.yaml").read_text(encoding="utf-8")
    if drop_from is not None:
        head, _, entry = template.partition(f"\n  {drop_from}:\n")
        assert API_ORDERS_POLICY in entry, "the template changed: pick another policy line"
        template = f"{head}\n  {drop_from}:\n" + entry.replace(API_ORDERS_POLICY, "", 1)
    (root / "template.yaml").write_text(template, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("drop_from", "expected_status", "expected_get_status"),
    [(None, 200, 404), ("ApiFunction", 500, 500)],
    ids=["template-as-is", "ApiFunction-without-OrdersTable-policy"],
)
def test_function_permissions_missing_policy_line_fails_that_function(
    tmp_path: Path, drop_from: str | None, expected_status: int, expected_get_status: int
) -> None:
    root = _project_copy(tmp_path / "project", drop_from=drop_from)
    with running_stack(tmp_path, LOCAL_STACK_PROJECT_ROOT=str(root)) as stack:
        headers = {"Authorization": f"api-key {stack.outputs['api_key']}"}
        response = requests.get(f"{stack.api_url}/orders/v2", headers=headers, timeout=60)
        # One order by id: a GetItem signed without boto3 (adapters/dynamodb_http.py), under the same IAM.
        unknown = requests.get(
            f"{stack.api_url}/orders/v2/3f1d1c3e-6a34-4d6e-9f5b-0d3c8f1f2a10", headers=headers, timeout=60
        )
        # Past the authorizer either way (a 401 would mean it lost its own table): ApiFunction answers.
        assert response.status_code == expected_status, response.text
        assert unknown.status_code == expected_get_status, unknown.text
        if drop_from is not None:
            assert "AccessDenied" in stack.log_tail(2000)
