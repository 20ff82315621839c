"""What template.yaml promises about the results bucket and the final function's permissions."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_local.template import load_template
from harness import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")


def resource(logical_id: str) -> dict[str, Any]:
    return TEMPLATE.resources[logical_id].properties


@pytest.fixture
def finalize_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resource("FinalizeFunction")["Policies"]:
        statements += policy.get("Statement", []) if isinstance(policy, dict) else []
    return statements


def _subs(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v["Fn::Sub"] if isinstance(v, dict) and "Fn::Sub" in v else str(v) for v in values]


def test_bucket_blocks_public_access_and_acls() -> None:
    bucket = resource("ResultsBucket")

    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_expires_incomplete_uploads_and_forgotten_checkpoints() -> None:
    rules = {rule["Id"]: rule for rule in resource("ResultsBucket")["LifecycleConfiguration"]["Rules"]}

    abort = rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]
    assert abort["DaysAfterInitiation"] <= 7
    assert rules["expire-landing-checkpoints"]["Prefix"] == "_landing-state/"


def test_bucket_policy_refuses_requests_without_tls_and_with_old_tls() -> None:
    statements = {s["Sid"]: s for s in resource("ResultsBucketPolicy")["PolicyDocument"]["Statement"]}

    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyOutdatedTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}


def test_final_function_may_only_write_read_back_and_abort_under_the_results_prefix(
    finalize_statements: list[dict[str, Any]],
) -> None:
    s3 = [s for s in finalize_statements if any(a.startswith("s3:") for a in s["Action"])]
    by_resource = {tuple(_subs(s["Resource"])): set(s["Action"]) for s in s3}

    assert by_resource[("${ResultsBucket.Arn}/${ResultsPrefix}/*",)] == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:GetObject",
    }
    assert by_resource[("${ResultsBucket.Arn}/_landing-state/*",)] == {
        "s3:PutObject",
        "s3:GetObject",
        "s3:DeleteObject",
    }
    assert all("*" not in action for actions in by_resource.values() for action in actions)
    listing = next(s for s in s3 if s["Action"] == ["s3:ListBucket"])
    assert _subs(listing["Condition"]["StringLike"]["s3:prefix"]) == [
        "${ResultsPrefix}/*",
        "_landing-state/*",
    ]


def test_final_function_downloads_only_from_the_configured_public_hosts() -> None:
    environment = resource("FinalizeFunction")["Environment"]["Variables"]
    default_hosts = TEMPLATE.parameters["DownloadAllowedHosts"].split(",")

    assert environment["DOWNLOAD_ALLOWED_HOSTS"] == {"Ref": "DownloadAllowedHosts"}
    assert "ALLOW_HTTP_DOWNLOADS" not in environment  # local mode only in the local stack
    assert not {"127.0.0.1", "localhost", "169.254.169.254"} & set(default_hosts)
